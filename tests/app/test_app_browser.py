"""The app in a real browser: headless Chromium uploads a real voice and a real ORL photo, the outputs appear; a
corrupt upload shows the error and the app keeps serving. Screenshots go to the test output (see ``shots``)."""
from __future__ import annotations

import time

import pytest

DRAWN_PIXELS = """
const c = document.getElementById(arguments[0]);
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 244) + Math.abs(d[i+1] - 244) + Math.abs(d[i+2] - 244) > 30) n++;
return n;"""


def _wait_state(driver, key: str, timeout: float = 60.0) -> str:
    """Wait for document.body.dataset[key] to be set by the page ('done' or 'error'); returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script(f"return document.body.dataset.{key} || ''")
        if state:
            return state
        time.sleep(0.1)
    raise AssertionError(f"the page did not finish the {key} request in {timeout} s")


def _submit(driver, input_id: str, path, button: str, key: str) -> str:
    from selenium.webdriver.common.by import By

    driver.execute_script(f"delete document.body.dataset.{key}")
    driver.find_element(By.ID, input_id).send_keys(str(path))
    driver.find_element(By.ID, button).click()
    return _wait_state(driver, key)


def _image_loaded(driver, element_id: str) -> bool:
    return driver.execute_script(f"const i = document.getElementById('{element_id}');"
                                 "return i.complete && i.naturalWidth > 0")


def test_voice_tab_real_voice_then_corrupt_upload(browser, server_url, voxceleb1_samples, shots, tmp_path):
    from selenium.webdriver.common.by import By

    voice = sorted(voxceleb1_samples.glob("*.wav"))[0]
    browser.get(server_url)
    assert browser.find_element(By.ID, "missing").get_attribute("hidden") is not None   # every part present
    assert _submit(browser, "voice-file", voice, "analyse", "voice") == "done", \
        browser.find_element(By.ID, "error").text
    assert _image_loaded(browser, "face-img")
    assert browser.execute_script(DRAWN_PIXELS, "shape-view") > 2000       # the 3D view drew the face
    assert browser.execute_script(DRAWN_PIXELS, "mean-view") > 2000
    rows = browser.find_elements(By.CSS_SELECTOR, "#am-table tr")
    assert len(rows) == 95                                                  # header + 94 AMs (Table 5.1)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#nearest img")) == 5
    assert browser.find_elements(By.CSS_SELECTOR, "table.cov[data-covariate=gender] tr")
    assert "the voice sounds" in browser.find_element(By.ID, "gender-line").text
    browser.save_screenshot(str(shots / "app_voice.png"))
    # rotating the 3D view redraws it
    before = browser.execute_script("return document.getElementById('shape-view').toDataURL()")
    browser.execute_script("window.dispatchEvent(new Event('x'));")
    from selenium.webdriver import ActionChains
    ActionChains(browser).drag_and_drop_by_offset(browser.find_element(By.ID, "shape-view"), 60, 0).perform()
    assert browser.execute_script("return document.getElementById('shape-view').toDataURL()") != before

    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 50)
    assert _submit(browser, "voice-file", bad, "analyse", "voice") == "error"
    msg = browser.find_element(By.ID, "error").text
    assert "corrupt.wav" in msg and "cannot decode" in msg
    browser.save_screenshot(str(shots / "app_voice_error.png"))
    # the app still serves: the real voice again, with the gender overridden
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.ID, "gender")).select_by_value("f")
    assert _submit(browser, "voice-file", voice, "analyse", "voice") == "done"
    assert "chosen above" in browser.find_element(By.ID, "gender-line").text
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None


def test_photo_tab_real_orl_photo(browser, server_url, orl_faces, shots):
    from selenium.webdriver.common.by import By

    pytest.importorskip("dlib", reason="the photo tab needs dlib (pip install 'voiceface[align]')")
    browser.get(server_url)
    browser.find_element(By.ID, "tab-photo").click()
    state = _submit(browser, "photo-file", orl_faces / "s1" / "1.pgm", "reconstruct", "photo")
    assert state == "done", browser.find_element(By.ID, "error").text
    for k in ("overlay", "uv", "shading", "relit"):
        assert _image_loaded(browser, f"photo-{k}"), k
    assert browser.execute_script(DRAWN_PIXELS, "photo-view") > 2000
    assert "photometric error" in browser.find_element(By.ID, "photo-error-line").text
    browser.save_screenshot(str(shots / "app_photo.png"))


def test_microphone_recording_is_uploaded_as_wav(browser, server_url, shots):
    """Chromium's fake microphone (a beeping tone): the page records PCM, encodes a WAV and the server decodes it
    (the tone may or may not pass the VAD: either every output or a 'no speech' reason, never a decoding error)."""
    from selenium.webdriver.common.by import By

    browser.get(server_url)
    browser.execute_script("delete document.body.dataset.voice")
    browser.find_element(By.ID, "record").click()
    deadline = time.monotonic() + 15                  # record until the page has 3 s of samples
    while time.monotonic() < deadline and browser.find_element(By.ID, "rec-state").text not in (
            "recording 3 s", "recording 4 s"):
        time.sleep(0.05)
    browser.find_element(By.ID, "record").click()
    deadline = time.monotonic() + 10                  # stopping encodes the WAV asynchronously (slow under load)
    while not (rec_state := browser.find_element(By.ID, "rec-state").text).startswith("recorded") \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rec_state.startswith("recorded"), rec_state
    browser.find_element(By.ID, "analyse").click()
    state = _wait_state(browser, "voice")
    assert state == "done", (rec_state, browser.find_element(By.ID, "error").text)
    why = " ".join(browser.find_element(By.ID, k).text for k in ("face-why", "dimnet-why", "shape-why"))
    assert "decode" not in why
    browser.save_screenshot(str(shots / "app_microphone.png"))


def test_missing_runs_are_named_with_their_commands(browser, empty_server_url, shots):
    from selenium.webdriver.common.by import By

    browser.get(empty_server_url)
    deadline = time.monotonic() + 10
    box = browser.find_element(By.ID, "missing")
    while box.get_attribute("hidden") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    text = box.text
    for part in ("world:", "dimnet:", "gan:", "cest:", "sfv:"):
        assert part in text, text
    assert "voiceface demo --out demo --methods gan" in text
    browser.save_screenshot(str(shots / "app_missing.png"))
