"""The app's logic without a browser: runs discovery, upload checks, every voice / photo output, the request gate,
the HTTP limits, and `voiceface shape` estimating the gender from the voice."""
from __future__ import annotations

import base64
import io
import json
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceface.app import media
from voiceface.app.runs import find_runs
from voiceface.errors import InputError


def _wav_bytes(x: np.ndarray, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_find_runs_demo_folder_and_missing(tiny_demo, tmp_path):
    runs = find_runs([tiny_demo])
    assert runs.world == tiny_demo / "world" and runs.dimnet.name == "dimnet_IG"
    assert runs.gan.name == "gan_run" and runs.cest.name == "cest_a" and runs.sfv.name == "sfv_run"
    assert runs.missing() == []
    only = find_runs([tiny_demo / "gan" / "gan_run"])        # a run folder: its world from its recorded data
    assert only.gan == tiny_demo / "gan" / "gan_run" and only.world == tiny_demo / "world"
    missing = {m["part"]: m["command"] for m in only.missing()}
    assert set(missing) == {"dimnet", "cest", "sfv"} and "voiceface demo" in missing["sfv"]
    assert {m["part"] for m in find_runs([tmp_path]).missing()} == {"world", "dimnet", "gan", "cest", "sfv"}


def test_upload_checks(voxceleb1_samples, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))          # where the uploads' temporary folders go
    assert media.safe_name("../../etc/pass wd.wav") == "pass_wd.wav" and media.safe_name("") == "upload"
    with pytest.raises(InputError, match="empty file"):
        media.decode_audio(b"", "a.wav")
    with pytest.raises(InputError, match="too large"):
        media.check_size(b"x" * 11, "a.wav", limit=10)
    with pytest.raises(InputError, match="^bad.wav: cannot decode"):
        media.decode_audio(b"RIFF" + bytes(range(256)) * 4, "bad.wav")
    with pytest.raises(InputError, match="silent"):
        media.decode_audio(_wav_bytes(np.zeros(16000, np.float32)), "quiet.wav")
    voice, sr = sf.read(sorted(voxceleb1_samples.glob("*.wav"))[0], dtype="float32")
    long = np.tile(voice, int(np.ceil(61 * sr / len(voice))))[: int(61.5 * sr)]
    x, notes = media.decode_audio(_wav_bytes(long, sr), "long.wav")
    assert len(x) == 60 * 16000 and "61.5 s" in notes[0]
    seen = []
    real_load = media.load_audio
    monkeypatch.setattr(media, "load_audio", lambda p: seen.append(Path(p)) or real_load(p))
    media.decode_audio(_wav_bytes(voice, sr), "again.wav")
    assert seen and seen[0].name == "again.wav" and scratch in seen[0].parents and not seen[0].exists()
    assert not list(scratch.iterdir())                                     # nothing of the uploads kept


def test_analyse_voice_every_part(engine, voxceleb1_samples):
    x, _ = media.decode_audio(sorted(voxceleb1_samples.glob("*.wav"))[0].read_bytes(), "v.wav")
    res = engine.analyse_voice(x)
    assert res["face"]["image"].startswith("data:image/png;base64,")
    gender = res["dimnet"]["covariates"]["gender"]
    assert {g["label"] for g in gender} == {"m", "f"} and abs(sum(g["probability"] for g in gender) - 1) < 1e-3
    assert res["gender"]["source"] == "voice" and res["gender"]["used"] == gender[0]["label"]
    near = res["dimnet"]["nearest"]
    sims = [n["similarity"] for n in near]
    assert len(near) == 5 and len({n["identity"] for n in near}) == 5 and sims == sorted(sims, reverse=True)
    shape = res["shape"]
    assert shape["gender"] == res["gender"]["used"] and len(shape["ams"]) == 94
    assert shape["n_selected"] == sum(a["selected"] for a in shape["ams"])
    assert shape["mesh"]["n_vertices"] == shape["mean_mesh"]["n_vertices"] > 1000
    verts = np.frombuffer(base64.b64decode(shape["mesh"]["vertices"]), "<f4").reshape(-1, 3)
    mean = np.frombuffer(base64.b64decode(shape["mean_mesh"]["vertices"]), "<f4").reshape(-1, 3)
    assert np.isclose(np.linalg.norm(verts - mean, axis=1).max(), shape["difference_max"], rtol=0.02)
    other = "f" if shape["gender"] == "m" else "m"
    over = engine.analyse_voice(x, gender=other)
    assert over["gender"]["source"] == "given" and over["shape"]["gender"] == other


def test_no_speech_gives_reasons_not_a_crash(engine):
    res = engine.analyse_voice(np.zeros(16000, np.float32))          # (the upload check turns this away first)
    assert "no speech" in res["dimnet"]["error"] and "no speech" in res["face"]["error"]
    assert "gender" in res["shape"]["error"]                      # nothing to estimate the gender from


def test_analyse_photo_and_not_a_face(engine, orl_faces):
    pytest.importorskip("dlib", reason="CEST photos need dlib (pip install 'voiceface[align]')")
    res = engine.analyse_photo((orl_faces / "s1" / "1.pgm").read_bytes(), "1.pgm")
    assert set(res["images"]) == {"overlay", "uv", "shading", "relit"} and res["greyscale"]
    assert res["mesh"]["n_vertices"] > 1000 and "colors" in res["mesh"]
    blank = io.BytesIO()
    from PIL import Image
    Image.new("L", (92, 112), 128).save(blank, format="PNG")
    with pytest.raises(InputError, match="^grey.png: "):
        engine.analyse_photo(blank.getvalue(), "grey.png")
    with pytest.raises(InputError, match="^junk.jpg: not a readable image") as e:
        engine.analyse_photo(b"not an image", "junk.jpg")
    assert "voiceface-app-" not in str(e.value)                   # the temporary path is not shown


def test_gate_one_at_a_time_and_bounded():
    pytest.importorskip("fastapi", reason="the app extra is not installed")
    import time

    from voiceface.app.server import Busy, Gate

    gate = Gate(max_waiting=1)
    inside, release, order = threading.Event(), threading.Event(), []

    def hold():
        with gate:
            inside.set()
            release.wait(5)
            order.append("first")

    def wait_turn():
        with gate:
            order.append("second")

    t1 = threading.Thread(target=hold)
    t1.start()
    inside.wait(5)
    t2 = threading.Thread(target=wait_turn)       # queued behind t1
    t2.start()
    deadline = time.monotonic() + 5
    while gate._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == []                              # the second waits while the first runs
    with pytest.raises(Busy):                      # one running + one waiting: the third is turned away
        gate.__enter__()
    release.set()
    t1.join(5), t2.join(5)
    assert order == ["first", "second"]
    with gate:                                     # free again
        pass


def _post_file(url: str, size: int) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    boundary = "xyzzy"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + b"0" * size + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/api/voice", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_limits(server_url, monkeypatch):
    import urllib.request

    from voiceface.app import server

    monkeypatch.setattr(media, "MAX_UPLOAD_BYTES", 1000)
    code, body = _post_file(server_url, 2000)                   # within the form slack: read, then refused
    assert code == 400 and "too large" in body["error"]
    monkeypatch.setattr(server, "FORM_OVERHEAD", 100)
    code, body = _post_file(server_url, 2000)                   # declared length over the limit: refused unread
    assert code == 413 and "too large" in body["error"]
    status = json.loads(urllib.request.urlopen(server_url + "/api/status", timeout=30).read())
    assert status["missing"] == [] and status["genders"] == ["f", "m"]


def test_shape_cli_estimates_gender(tiny_demo, voxceleb1_samples, tmp_path, capsys):
    from voiceface.cli import main

    voice = sorted(voxceleb1_samples.glob("*.wav"))[0]
    assert main(["shape", str(voice), "--run", str(tiny_demo / "sfv" / "sfv_run"), "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "gender estimated from the voice" in printed
    info = json.loads((tmp_path / f"{voice.stem}.json").read_text())
    assert info["gender"] in ("m", "f") and f"gender estimated from the voice: {info['gender']}" in printed
    lone = tmp_path / "lone"
    import shutil
    shutil.copytree(tiny_demo / "sfv" / "sfv_run", lone / "sfv_run")
    assert main(["shape", str(voice), "--run", str(lone / "sfv_run"), "-o", str(tmp_path / "o2")]) == 2
    assert "--gender" in capsys.readouterr().err


def test_mesh_payload_roundtrip(tmp_path):
    from voiceface.face3d.meshio import save_mesh

    v = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    tri = np.array([[0, 1, 2], [2, 3, 4]])
    save_mesh(tmp_path / "m.obj", v, tri, np.full((5, 3), 0.5))
    rv, rt, rc = media.read_obj(tmp_path / "m.obj")
    assert np.allclose(rv, v, atol=1e-4) and (rt == tri).all() and np.allclose(rc, 0.5, atol=0.01)
    (tmp_path / "p.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")           # vertices only (landmark template)
    pv, pt, _ = media.read_obj(tmp_path / "p.obj")
    assert pv.shape == (3, 3) and pt.shape == (0, 3)
    pay = media.mesh_payload(rv, rt, media.heat_colors(np.arange(5.0)))
    back = np.frombuffer(base64.b64decode(pay["vertices"]), "<f4").reshape(-1, 3)
    cols = np.frombuffer(base64.b64decode(pay["colors"]), np.uint8).reshape(-1, 3)
    assert np.array_equal(back, rv.astype(np.float32)) and pay["n_triangles"] == 2
    assert cols[0, 2] > cols[0, 0] and cols[-1, 0] > cols[-1, 2]               # 0 blue ... max red


def test_app_without_runs_says_what_is_missing():
    from voiceface.app.inference import VoiceFaceApp, synthetic_voice
    from voiceface.app.runs import AppRuns

    app = VoiceFaceApp(AppRuns())
    assert {m["part"] for m in app.status()["missing"]} == {"world", "dimnet", "gan", "cest", "sfv"}
    res = app.analyse_voice(synthetic_voice(2.0, np.random.default_rng(0)))
    assert res["dimnet"] == {"error": "no DIMNet run"} and res["face"] == {"error": "no GAN run"}
    assert res["shape"] == {"error": "no evaluated SfV run"} and res["gender"]["used"] is None
    with pytest.raises(InputError, match="no CEST run: voiceface demo"):
        app.analyse_photo(b"x", "a.png")
