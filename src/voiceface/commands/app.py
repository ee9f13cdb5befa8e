"""``voiceface app [--runs DIR...] [--host 127.0.0.1] [--port 7860]``: the local web page (needs the ``app`` extra)."""
from __future__ import annotations

import argparse
import ipaddress
import socket


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help="serve a local web page: speak or upload a voice, see the face, 3D shape, AMs",
                       description="Voice tab: the generated face (GAN), the 3D shape from the voice beside the "
                                   "gender's mean face (SfV), the AM table, DIMNet gender / nationality and the five "
                                   "nearest gallery faces. Photo tab: CEST reconstruction of a photo. Uses the runs "
                                   "`voiceface demo` wrote (default demo/) or the run folders given; the page says "
                                   "which parts are missing and how to make them.")
    p.add_argument("--runs", nargs="+", default=["demo"], metavar="DIR",
                   help="demo folder(s) and / or run folders (default: demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one. A busy port is a user error."""
    from ..errors import VoicefaceError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise VoicefaceError(f"cannot listen on {host}:{port} ({e.strerror}): choose another --port") from None
    return sock


def run(args: argparse.Namespace) -> int:
    from ..errors import MissingDependencyError

    try:
        import uvicorn

        from ..app.server import create_app
    except ImportError as e:
        raise MissingDependencyError(e.name or "fastapi", "app", "voiceface app") from None
    import torch

    from ..app.inference import load_app
    from ..app.runs import find_runs

    if args.threads:
        torch.set_num_threads(args.threads)
    runs = find_runs(args.runs)
    for m in runs.missing():
        print(f"missing {m['part']} ({m['shows']}): {m['command']}")
    engine = load_app(runs)
    engine.warm_up()
    sock = _bind(args.host, args.port)
    if not _is_loopback(args.host):
        print(f"warning: serving on {args.host}: other machines on the network can reach this page")
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"voiceface app: http://{host}:{sock.getsockname()[1]}/ (Ctrl-C stops it)", flush=True)
    try:
        uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning")).run(sockets=[sock])
    finally:
        sock.close()
    return 0
