"""Uploads in, page payloads out: size / duration / silence checks, temporary files that do not outlive a request,
PNG data URLs and compact meshes for the page's WebGL viewer."""
from __future__ import annotations

import base64
import io
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio.io import SAMPLE_RATE, load_audio
from ..errors import InputError

MAX_UPLOAD_BYTES = 20 * 2**20
MAX_AUDIO_S = 60.0
SILENCE_RMS = 1e-4          # RMS (full scale 1) below which a recording counts as silent (about -80 dBFS)


def safe_name(filename: str | None, default: str = "upload") -> str:
    """A plain file name (letters, digits, ``._-``) keeping the upload's extension, for temporary files and
    messages; never a path."""
    name = Path(filename or default).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or default
    return name[-80:]


def check_size(data: bytes, filename: str, limit: int | None = None) -> None:
    """Raise ``InputError`` for an empty upload or one over ``limit`` bytes (default ``MAX_UPLOAD_BYTES``)."""
    limit = MAX_UPLOAD_BYTES if limit is None else limit
    if not data:
        raise InputError(filename, "empty file")
    if len(data) > limit:
        raise InputError(filename, f"file too large ({len(data) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB)")


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private temporary folder, removed with everything in it on exit."""
    with tempfile.TemporaryDirectory(prefix="voiceface-app-") as tmp:
        yield Path(tmp)


@contextmanager
def upload_file(data: bytes, filename: str) -> Iterator[Path]:
    """The upload written to a private temporary folder, removed (with anything written beside it) on exit."""
    with scratch_dir() as tmp:
        path = tmp / safe_name(filename)
        path.write_bytes(data)
        yield path


def _rename(e: InputError, filename: str) -> InputError:
    """The same error naming the upload instead of its temporary path."""
    return InputError(filename, e.problem)


def decode_audio(data: bytes, filename: str, max_s: float = MAX_AUDIO_S) -> tuple[np.ndarray, list[str]]:
    """Upload bytes -> ((N,) float32 16 kHz mono samples, notes). Audio longer than ``max_s`` is cut (with a note);
    empty, undecodable or silent audio raises ``InputError`` naming ``filename``."""
    check_size(data, filename)
    with upload_file(data, filename) as path:
        try:
            x = load_audio(path)
        except InputError as e:
            raise _rename(e, filename) from None
    notes = []
    if len(x) > max_s * SAMPLE_RATE:
        notes.append(f"the recording is {len(x) / SAMPLE_RATE:.1f} s long: only its first {max_s:.0f} s are used")
        x = x[: int(max_s * SAMPLE_RATE)]
    if float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < SILENCE_RMS:
        raise InputError(filename, "the recording is silent")
    return x, notes


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """(N,) float32 16 kHz samples -> a 16-bit PCM WAV at ``path``."""
    import soundfile as sf

    sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")
    return path


def png_url(img: np.ndarray) -> str:
    """(H, W, 3) or (H, W) uint8 image -> ``data:image/png;base64,...``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_url(path: Path) -> str:
    """A PNG file -> data URL."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _b64(a: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def mesh_payload(vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None) -> dict:
    """A mesh for the page: (V, 3) vertices as base64 little-endian float32, (F, 3) triangles as uint32, optional
    (V, 3) colours in [0, 1] as uint8; the viewer centres and scales it."""
    v = np.asarray(vertices, np.float32).reshape(-1, 3)
    out = {"n_vertices": len(v), "n_triangles": int(len(triangles)), "vertices": _b64(v, "<f4"),
           "triangles": _b64(np.asarray(triangles).reshape(-1, 3), "<u4")}
    if colors is not None:
        out["colors"] = _b64(np.clip(np.asarray(colors) * 255 + 0.5, 0, 255), np.uint8)
    return out


def heat_colors(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """(V,) non-negative values -> (V, 3) colours in [0, 1] (blue = 0 ... red = ``vmax``, default the maximum);
    matplotlib's ``turbo`` map."""
    from matplotlib import colormaps

    top = float(vmax if vmax is not None else values.max(initial=0.0))
    return colormaps["turbo"](np.clip(values / max(top, 1e-12), 0, 1))[:, :3]


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """An OBJ written by the project (``face3d.meshio.load_mesh``): ((V, 3) vertices, (F, 3) 0-based triangles
    (empty for a vertices-only OBJ, e.g. SfV on a landmark template), (V, 3) colours in [0, 1] or None)."""
    from ..face3d.meshio import load_mesh

    v, f, c = load_mesh(path)
    return v, (np.zeros((0, 3), np.int64) if f is None else f), c
