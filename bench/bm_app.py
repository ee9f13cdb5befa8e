"""Benchmark: `voiceface app` latency, from the upload of a 5 s recording to all voice-tab outputs (generated face,
3D shape + AM table, DIMNet covariates, five nearest gallery faces), on one CPU thread (the issue's target: < 3 s).

    .venv/bin/python bench/bm_app.py [--runs DIR] [--nets cpu|tiny] [--repeats 5] [--seconds 5] [--threads 1]

``--runs``: a demo folder (default: quick runs built in a temporary folder with ``voiceface.app.quickruns``, the demo's
CPU-preset architectures trained for a few steps; ``--nets tiny`` for narrow ones). The app is served by uvicorn on a
free localhost port and the recording is POSTed to /api/voice as a browser would (multipart WAV); the first request
(after the warm-up analysis that ``voiceface app`` runs before serving) and the median of the next ``--repeats`` are printed with the server's
per-part breakdown. Without the ``app`` extra the same work is timed in process (decode + analyse).
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch


def recording(seconds: float) -> tuple[bytes, str]:
    """A real VoxCeleb1 voice (../shared/data) looped / cut to ``seconds`` as WAV bytes, else a synthetic voice."""
    import soundfile as sf

    from voiceface.audio.io import load_audio
    from voiceface.data.samples import shared_data_dir

    shared = shared_data_dir()
    vox = sorted((shared / "voxceleb1_samples").glob("*.wav")) if shared else []
    if vox:
        x, source = load_audio(vox[0]), vox[0].name
    else:
        from voiceface.app.inference import synthetic_voice
        x, source = synthetic_voice(seconds, np.random.default_rng(0)), "a synthetic voice"
    n = int(seconds * 16000)
    x = np.tile(x, int(np.ceil(n / len(x))))[:n]
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue(), source


def _multipart(data: bytes, name: str) -> tuple[bytes, str]:
    b = "benchboundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def serve(engine):
    """(url, stop) of the app on a free 127.0.0.1 port, or None without the app extra."""
    try:
        import uvicorn

        from voiceface.app.server import create_app
    except ImportError:
        return None
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(10)
        sock.close()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def one_request(url: str | None, engine, data: bytes) -> tuple[float, dict]:
    """Wall time of one upload -> outputs, and the response."""
    t0 = time.perf_counter()
    if url is None:
        from voiceface.app import media
        samples, _ = media.decode_audio(data, "bench.wav")
        res = engine.analyse_voice(samples)
    else:
        body, ctype = _multipart(data, "bench.wav")
        req = urllib.request.Request(url + "/api/voice", data=body, method="POST", headers={"Content-Type": ctype})
        res = json.loads(urllib.request.urlopen(req, timeout=120).read())
    return time.perf_counter() - t0, res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=None, help="demo folder (default: quick runs in a temporary folder)")
    ap.add_argument("--nets", default="cpu", choices=("cpu", "tiny"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from voiceface.app.inference import load_app
    from voiceface.app.quickruns import build_quick_runs
    from voiceface.app.runs import find_runs

    with tempfile.TemporaryDirectory(prefix="bm_app-") as tmp:
        t0 = time.perf_counter()
        root = Path(a.runs) if a.runs else build_quick_runs(Path(tmp) / "runs", nets=a.nets)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine = load_app(find_runs([root]))
        engine.warm_up()                                  # as `voiceface app` does before serving
        loaded = time.perf_counter() - t0
        data, source = recording(a.seconds)
        served = serve(engine)
        url = served[0] if served else None
        cold, res = one_request(url, engine, data)
        times, parts = [], []
        for _ in range(a.repeats):
            dt, res = one_request(url, engine, data)
            times.append(dt)
            parts.append(res["timings"])
        if served:
            served[1]()
    missing = [k for k in ("face", "shape", "dimnet") if "error" in res[k]]
    print(f"runs={a.runs or f'quick ({a.nets} nets; built in {built:.0f} s)'} threads={a.threads} "
          f"recording={a.seconds:g} s of {source} path={'HTTP /api/voice' if url else 'in process'}")
    print(f"app start (load runs, embed gallery, warm-up analysis): {loaded:.2f} s")
    print(f"upload -> all outputs: first request {cold:.2f} s; warm median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {a.repeats} requests)")
    print("warm median per part: " + ", ".join(f"{k} {statistics.median(p[k] for p in parts):.3f} s"
                                               for k in parts[0]))
    print("outputs missing: " + (", ".join(missing) if missing else "none")
          + f"; target < 3 s: {'met' if statistics.median(times) < 3 else 'NOT met'} (warm median)")


if __name__ == "__main__":
    main()
