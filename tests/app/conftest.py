"""App fixtures: tiny trained runs in the demo layout, the app served on an ephemeral localhost port in a thread,
and headless Debian Chromium driven by Selenium through /usr/bin/chromedriver (no browser download)."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("VOICEFACE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VOICEFACE_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A tiny world and few-step runs of the four methods, narrow networks (about 25 s on one core)."""
    from voiceface.app.quickruns import build_quick_runs

    return build_quick_runs(tmp_path_factory.mktemp("app_demo"), nets="tiny")


@pytest.fixture(scope="session")
def engine(tiny_demo):
    from voiceface.app.inference import load_app
    from voiceface.app.runs import find_runs

    return load_app(find_runs([tiny_demo]))


@contextmanager
def serving(engine):
    """The app of ``engine`` served by uvicorn in a daemon thread on 127.0.0.1:<free port>; yields its URL."""
    pytest.importorskip("fastapi", reason="the app extra is not installed (pip install 'voiceface[app]')")
    uvicorn = pytest.importorskip("uvicorn", reason="the app extra is not installed (pip install 'voiceface[app]')")
    from voiceface.app.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def server_url(engine):
    """The app on the tiny runs, for the whole session."""
    with serving(engine) as url:
        yield url


@pytest.fixture
def empty_server_url():
    """The app with no runs at all (every part missing)."""
    from voiceface.app.inference import VoiceFaceApp
    from voiceface.app.runs import AppRuns

    with serving(VoiceFaceApp(AppRuns())) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package) through Selenium; skipped when Chromium or its driver is absent."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(f"Chromium not installed ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install 'voiceface[dev]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300",
              "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: $VOICEFACE_TEST_OUTPUT/app when set, else the test's tmp_path."""
    base = os.environ.get("VOICEFACE_TEST_OUTPUT")
    out = Path(base) / "app" if base else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out
