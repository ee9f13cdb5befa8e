"""The web layer of ``voiceface app`` (FastAPI): the page, its script files, and three JSON endpoints that call
``inference``. Requests are computed one at a time; at most ``max_waiting`` more wait, further ones get HTTP 503.
Uploads are read into memory (bounded), written only to temporary folders removed before the response returns.

``GET /`` the page; ``GET /static/...`` its script and style; ``GET /api/status`` runs and missing parts;
``POST /api/voice`` (form: ``file``, optional ``gender`` m|f); ``POST /api/photo`` (form: ``file``).
Errors a user can fix come back as HTTP 400 ``{"error": message}``.
"""
from __future__ import annotations

import threading
import time
from importlib import resources

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import VoicefaceError
from . import media
from .inference import VoiceFaceApp


FORM_OVERHEAD = 64 * 2**10     # bytes of a multipart form around the file (boundaries, headers, the gender field)


class Busy(Exception):
    """More requests are waiting than the queue holds."""


class Gate:
    """One computation at a time, at most ``max_waiting`` callers waiting for it."""

    def __init__(self, max_waiting: int = 4):
        self._run = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0
        self.max_waiting = max_waiting

    def __enter__(self):
        with self._count:
            if self._waiting > self.max_waiting:
                raise Busy()
            self._waiting += 1
        self._run.acquire()
        return self

    def __exit__(self, *exc):
        self._run.release()
        with self._count:
            self._waiting -= 1


def _read_upload(file: UploadFile) -> tuple[bytes, str]:
    """The upload's bytes (at most one byte over the limit is read) and its plain file name."""
    name = media.safe_name(file.filename)
    data = file.file.read(media.MAX_UPLOAD_BYTES + 1)
    media.check_size(data, name)
    return data, name


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(engine: VoiceFaceApp, max_waiting: int = 4) -> FastAPI:
    """The FastAPI application serving ``engine``."""
    app = FastAPI(title="voiceface", docs_url=None, redoc_url=None, openapi_url=None)
    gate = Gate(max_waiting)
    static = resources.files("voiceface.app") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.middleware("http")
    async def refuse_large(request: Request, call_next):
        """Refuse a declared body over the upload limit before it is received (HTTP 413)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > media.MAX_UPLOAD_BYTES + FORM_OVERHEAD:
            return _error(413, f"upload too large ({int(declared) / 2**20:.1f} MB; the limit is "
                               f"{media.MAX_UPLOAD_BYTES / 2**20:.0f} MB)")
        return await call_next(request)

    def guarded(work):
        t0 = time.perf_counter()
        try:
            with gate:
                out = work()
        except Busy:
            return _error(503, "the app is busy with other requests: try again in a few seconds")
        except VoicefaceError as e:
            return _error(400, str(e))
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (static / "index.html").read_text(encoding="utf-8")

    @app.get("/api/status")
    def status() -> dict:
        return engine.status()

    @app.post("/api/voice")
    def voice(file: UploadFile = File(...), gender: str = Form("")):
        def work():
            data, name = _read_upload(file)
            samples, notes = media.decode_audio(data, name)
            res = engine.analyse_voice(samples, gender or None)
            return res | {"notes": notes, "duration_s": round(len(samples) / media.SAMPLE_RATE, 2)}
        return guarded(work)

    @app.post("/api/photo")
    def photo(file: UploadFile = File(...)):
        return guarded(lambda: engine.analyse_photo(*_read_upload(file)))

    return app
