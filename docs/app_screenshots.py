"""Screenshots of the web app on a demo folder, as in the README (needs the `app` extra, Debian's chromium and
chromium-driver):

    python docs/app_screenshots.py DEMO VOICE PHOTO OUTDIR

Serves the app on the runs of DEMO (the folder `voiceface demo` wrote) on a free localhost port, uploads VOICE in
the voice tab and PHOTO in the photo tab with headless Chromium, and saves OUTDIR/app_voice.png and
OUTDIR/app_photo.png; prints each request's time in the page.
"""
from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from voiceface.app.inference import load_app
from voiceface.app.runs import find_runs
from voiceface.app.server import create_app


def _serve(demo: Path) -> tuple[uvicorn.Server, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(load_app(find_runs([demo]))), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _browser() -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300", "--disable-gpu"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _submit(driver, file_input: str, path: Path, button: str, key: str, shot: Path) -> None:
    driver.execute_script(f"delete document.body.dataset.{key}")
    driver.find_element(By.ID, file_input).send_keys(str(path.resolve()))
    t0 = time.monotonic()
    driver.find_element(By.ID, button).click()
    while not driver.execute_script(f"return document.body.dataset.{key} || ''"):
        time.sleep(0.1)
    print(f"{key}: {driver.execute_script(f'return document.body.dataset.{key}')} in {time.monotonic() - t0:.2f} s")
    time.sleep(0.5)                                   # let the canvases finish drawing
    driver.save_screenshot(str(shot))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("demo", "voice", "photo", "out"):
        ap.add_argument(name, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server, url = _serve(args.demo)
    driver = _browser()
    try:
        driver.get(url)
        _submit(driver, "voice-file", args.voice, "analyse", "voice", args.out / "app_voice.png")
        driver.find_element(By.ID, "tab-photo").click()
        _submit(driver, "photo-file", args.photo, "reconstruct", "photo", args.out / "app_photo.png")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
