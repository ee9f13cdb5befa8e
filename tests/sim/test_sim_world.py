"""The world folder: layout contract, ground truth, determinism (serial == parallel), resume, loading."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voiceface.data.manifest import read_manifest
from voiceface.errors import ConfigError, InputError
from voiceface.face import align
from voiceface.sim import PRESETS, build_world, load_world
from voiceface.sim import people as ppl

MICRO = replace(PRESETS["tiny"], name="micro", identities=3, split=(1, 1, 1), utterances=1, sessions=1,
                duration_s=(2.0, 2.0), images=1, render_size=64, clips=1, clip_frames=(4, 4), clip_size=32)


def test_layout_contract(tiny_world):
    man = read_manifest(tiny_world / "manifest.csv")
    p = PRESETS["tiny"]
    by = {m: man.select(modality=m) for m in ("voice", "face", "clip", "mesh")}
    assert len(by["voice"]) == p.identities * p.utterances and len(by["face"]) == p.identities * p.images
    assert len(by["clip"]) == p.identities * p.clips and len(by["mesh"]) == p.identities
    splits = {}
    for it in man:
        assert Path(it.path).is_file()
        assert splits.setdefault(it.identity, it.split) == it.split            # identity-level split
    assert sorted(list(splits.values()).count(s) for s in ("train", "val", "test")) == sorted(p.split)
    genders = {(it.split, it.gender) for it in man}
    assert all((s, g) in genders for s in ("train", "val", "test") for g in "mf")   # stratified by gender
    for it in by["voice"]:
        assert it.duration and p.duration_s[0] <= it.duration <= p.duration_s[1] and it.session
    face = by["face"][0]
    assert Image.open(face.path).size == (128, 128)
    assert Image.open(tiny_world / face.extra["path64"]).size == (64, 64)
    meta = json.loads(Path(face.path).with_suffix(".json").read_text())
    lm = np.array(meta["landmarks128"])
    assert lm.shape == (68, 2)
    # aligned exactly like real photos: the 5 alignment points land on the template (least squares, small error)
    assert np.abs(align.points68_to_5(lm) - align.template(128)).max() < 6.0


def test_clip_and_mesh_ground_truth(tiny_world):
    w = load_world(tiny_world)
    it = w.manifest.select(modality="clip")[0]
    c = w.clip(it.path)
    f, s = c["frames"].shape[:2]
    assert c["frames"].dtype == np.uint8 and c["frames"].shape == (f, s, s, 3) and 4 <= f <= 6 and s == 64
    assert c["masks"].shape == (f, s, s) and c["masks"].dtype == bool and 0.05 < c["masks"].mean() < 0.8
    assert c["landmarks"].shape == (f, 68, 2) and c["pose"].shape == (f, 7) and c["light"].shape == (f, 27)
    m = ppl.face_model()
    assert c["expression"].shape == (f, m.num_expression) and c["albedo"].shape == (m.num_vertices, 3)
    # landmarks fall on the face mask (screen frame: pixel centre at +0.5)
    ij = np.clip(np.floor(c["landmarks"]).astype(int), 0, s - 1)
    on = c["masks"][np.arange(f)[:, None], ij[..., 1], ij[..., 0]]
    assert on.mean() > 0.9
    # pose varies smoothly: consecutive frames differ less than first vs last
    assert np.abs(np.diff(c["pose"][:, 1:4], axis=0)).max() <= np.abs(c["pose"][-1, 1:4] - c["pose"][0, 1:4]).max() + 1e-6
    mesh = w.mesh(it.identity)
    assert mesh["vertices"].shape == (m.num_vertices, 3) and mesh["ams"].shape == (94,)
    np.testing.assert_allclose(mesh["ams"], ppl.coeffs_to_ams(mesh["coeffs"][None])[0], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(mesh["coeffs"], c["coeffs"])


def test_world_json_ground_truth(tiny_world):
    w = load_world(tiny_world)
    gt = w.ground_truth
    assert w.coupling == 1.0 and w.info["counts"]["identities"] == 24 and len(w.people) == 24
    for g in ("m", "f"):
        linked, unlinked = gt[g]["linked_ams"], gt[g]["unlinked_ams"]
        assert linked and unlinked and not set(linked) & set(unlinked)
        r2 = gt[g]["r2_voice"]
        assert r2[linked[0]] > 0.5 and all(r2[a] < 0.02 for a in unlinked)
        # the nose is among the most voice-linked regions (nasal branch <- nose width, protrusion)
        assert any(a in linked[:5] for a in ("32-38", "33-37", "34-36"))
    row = w.person(w.people[0]["identity"])
    assert {"voice_f0_hz", "voice_vtl_cm", "ctrl_nose_width", "split"} <= set(row)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("world.json",)}


def test_deterministic_parallel_equals_serial_and_resume(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_world(a, MICRO, seed=3, workers=1, progress=False)
    build_world(b, MICRO, seed=3, workers=2, progress=False)
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    # resume: remove one identity's marker and a file; the rebuild restores identical files
    (a / ".done" / "sim00001.json").unlink()
    (a / "voices" / "sim00001" / "0.wav").unlink()
    build_world(a, MICRO, seed=3, workers=1, progress=False)
    assert _files(a) == fb
    c = tmp_path / "c"
    build_world(c, MICRO, seed=4, workers=1, progress=False)
    assert _files(c)["voices/sim00000/0.wav"] != fa["voices/sim00000/0.wav"]


def test_faces_only_world(tmp_path):
    """A preset without voices and photos (like ``video``) writes clips and meshes only; its people and clips are
    those of the same seed and index in a full world (the voices and photos draw from their own streams)."""
    p = PRESETS["video"]
    assert (p.utterances, p.images) == (0, 0) and p.clips == 2 and p.clip_size == PRESETS["small"].clip_size
    micro = replace(MICRO, name="micro_faces", utterances=0, images=0)
    build_world(tmp_path / "v", micro, seed=3, workers=1, progress=False)
    build_world(tmp_path / "full", MICRO, seed=3, workers=1, progress=False)
    man = read_manifest(tmp_path / "v" / "manifest.csv")
    assert {it.modality for it in man} == {"clip", "mesh"} and len(man) == 2 * micro.identities
    assert not (tmp_path / "v" / "voices").exists() or not any((tmp_path / "v" / "voices").rglob("*.wav"))
    fv, ff = _files(tmp_path / "v"), _files(tmp_path / "full")
    clips = [k for k in fv if k.startswith(("clips/", "meshes/"))]
    assert clips and all(fv[k] == ff[k] for k in clips)


def test_settings_mismatch_and_bad_input(tmp_path):
    build_world(tmp_path / "w", MICRO, seed=0, workers=1, progress=False)
    with pytest.raises(ConfigError):
        build_world(tmp_path / "w", MICRO, seed=1, workers=1, progress=False)
    with pytest.raises(ConfigError):
        build_world(tmp_path / "x", "huge")
    with pytest.raises(ConfigError):
        build_world(tmp_path / "x", MICRO, coupling=2.0)
    with pytest.raises(ConfigError, match="age_cue"):
        replace(MICRO, age_cue=1.5)
    # a world started before presets had an age_cue was built without one: it resumes as age_cue 0, not 1
    no_cue = replace(MICRO, age_cue=0.0)
    build_world(tmp_path / "v", no_cue, seed=0, workers=1, progress=False)
    state = tmp_path / "v" / ".build.json"
    old = json.loads(state.read_text())
    del old["preset"]["age_cue"]
    state.write_text(json.dumps(old))
    build_world(tmp_path / "v", no_cue, seed=0, workers=1, progress=False)
    with pytest.raises(ConfigError):
        build_world(tmp_path / "v", MICRO, seed=0, workers=1, progress=False)
    with pytest.raises(InputError):
        load_world(tmp_path / "nothing")


def test_cli_listen_and_show(tiny_world, tmp_path, capsys):
    from voiceface.cli import main

    assert main(["sim", "listen", str(tiny_world), "--out", str(tmp_path / "l"), "-n", "3"]) == 0
    assert len(list((tmp_path / "l").glob("*.wav"))) == 3 and (tmp_path / "l" / "spectrogram.png").is_file()
    assert main(["sim", "show", str(tiny_world), "--out", str(tmp_path / "s"), "-n", "4"]) == 0
    sheet = Image.open(tmp_path / "s" / "faces.png")
    assert sheet.size == (3 * 128, 4 * 128) and (tmp_path / "s" / "clip.png").is_file()
    assert main(["sim", "show", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2


def test_voices_carry_identity(tiny_world):
    """Utterances of one person are nearer each other than others' (1-NN on standardised mean log-mel, each
    utterance against all the others): far above chance."""
    import soundfile as sf

    from voiceface.audio.features import logmel

    items = [it for it in read_manifest(tiny_world / "manifest.csv") if it.modality == "voice"]
    x = np.stack([logmel(sf.read(it.path)[0]).mean(0) for it in items])
    x = (x - x.mean(0)) / x.std(0)
    ids = np.array([it.identity for it in items])
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    acc = (ids[d.argmin(1)] == ids).mean()
    per = len(items) / len(set(ids))
    assert acc > 8 * (per - 1) / (len(items) - 1), acc


def test_cli_build_with_preset_changes(tmp_path, capsys):
    from voiceface.cli import main

    out = tmp_path / "w"
    assert main(["sim", "build", "--out", str(out), "--preset", "tiny", "--quiet", "--workers", "1", "identities=3",
                 "split=[1,1,1]", "utterances=1", "sessions=1", "duration_s=[2,2]", "images=1", "render_size=64",
                 "clips=0", "age_cue=0.5"]) == 0
    preset = json.loads((out / "world.json").read_text())["preset"]
    assert preset["name"] == "tiny-custom" and preset["identities"] == 3 and preset["clips"] == 0
    assert preset["age_cue"] == 0.5
    assert len(read_manifest(out / "manifest.csv").select(modality="voice")) == 3
    assert "world tiny-custom" in capsys.readouterr().out
    assert main(["sim", "build", "--out", str(tmp_path / "x"), "--preset", "tiny", "identities=4"]) == 2
    assert "does not sum to 4 identities" in capsys.readouterr().err
