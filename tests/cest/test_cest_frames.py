"""CEST on real-layout frame folders: faces prepared once into a crop cache, crops streamed from disk through the
input pipeline (DataLoader workers give the same model), undecodable frames logged and replaced, the CLI on a
prepared tree; the simulated world's batches unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from voiceface import config as cfglib
from voiceface.face.detect import Face
from voiceface.methods.cest.data import FrameStore, folder_clips, load_sim_clips, prepare_frames
from voiceface.methods.cest.train import Batches, train

from test_cest_train import tiny_cfg


class LookupDetector:
    """Stands in for dlib: the known landmarks of each frame file (by name), or no face."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table
        self.calls = 0

    def find(self, image, path=None):
        from voiceface.errors import InputError

        self.calls += 1
        name = Path(path).name
        if name not in self.table:
            raise InputError(path, "no face found")
        return Face(box=(0, 0, 1, 1), score=1.0, landmarks=self.table[name])


def write_frame_tree(world: Path, root: Path) -> LookupDetector:
    """The world's training clips as VoxCeleb-style folders ``<id>/<video>/<frame>.jpg`` (frames pasted at an
    offset into a larger canvas), plus one corrupt frame and one frame without a face; returns a detector that
    knows every frame's landmarks in file pixels."""
    bank = load_sim_clips(world, ("train",))
    table = {}
    for c, name in enumerate(bank.clip_names):
        person = bank.person_names[bank.person[np.flatnonzero(bank.clip == c)[0]]]
        folder = root / f"id_{person}" / f"video_{name}"
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(bank.clip == c)):
            canvas = np.full((80, 96, 3), 40, np.uint8)
            canvas[10:74, 20:84] = bank.frames[i]
            fname = f"{name}_{k:05d}.jpg"
            Image.fromarray(canvas).save(folder / fname, quality=95)
            table[fname] = bank.landmarks[i].astype(np.float64) - 0.5 + np.array([20.0, 10.0])
    first = sorted(root.glob("*/*"))[0]
    (first / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(np.zeros((80, 96, 3), np.uint8)).save(first / "zz_noface.jpg")
    return LookupDetector(table)


@pytest.fixture(scope="module")
def frame_tree(clip_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("vox_frames")
    det = write_frame_tree(clip_world, root)
    return root, det


def frames_cfg(**changes):
    return tiny_cfg(data={"clips_per_batch": 2, "frames_per_clip": 2}, **changes)


def _log(run):
    return [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]


def test_prepare_once_then_stream(frame_tree, tmp_path):
    root, det = frame_tree
    clips = folder_clips(root)
    assert len(clips) == 4 and all(c.person.startswith("id_p") for c in clips)
    calls = det.calls
    store, report = prepare_frames(clips, tmp_path / "cache", 64, detector=det)
    assert report.prepared == 4 and report.frames == 16 and report.no_face == 1
    assert [Path(p).name for p, _ in report.failures] == ["zz_corrupt.jpg"]
    assert det.calls - calls == 17                   # the corrupt frame never reaches the detector
    again, report2 = prepare_frames(clips, tmp_path / "cache", 64, detector=det)
    assert det.calls - calls == 17 and report2.prepared == 0 and len(report2.failures) == 1
    b = store.tensors(np.arange(4))
    assert b["images"].shape == (4, 3, 64, 64) and b["masks"].shape == (4, 1, 64, 64) and b["masks"].sum() > 100
    assert isinstance(store, FrameStore) and store.truth == {}


def test_store_crops_match_the_world(clip_world, frame_tree, tmp_path):
    root, det = frame_tree
    bank = load_sim_clips(clip_world, ("train",))
    store, _ = prepare_frames(folder_clips(root), tmp_path / "cache", 64, detector=det)
    sim = bank.tensors(np.arange(len(bank)))
    real = store.tensors(np.arange(len(store)))
    # same clips and frames in the same order; each crop is its world frame re-framed by a similarity (the
    # template framing), and its landmarks went through the same map: warping the world frame by the similarity
    # fitted between the two landmark sets gives the crop (up to jpeg and resampling)
    from voiceface.face import align

    assert real["landmarks"].shape == sim["landmarks"].shape
    src = sim["landmarks"].numpy().astype(np.float64) - 0.5
    dst = real["landmarks"].numpy().astype(np.float64) - 0.5
    for i in range(len(store)):
        a = np.concatenate([src[i], np.ones((68, 1))], 1)
        t, *_ = np.linalg.lstsq(a, dst[i], rcond=None)                      # (3, 2) affine
        assert np.abs(a @ t - dst[i]).max() < 0.05                          # a similarity, exactly
        warped = align.warp_affine(bank.frames[i], t.T, 64).astype(np.float64) / 255.0
        m = (real["masks"][i, 0].numpy() > 0) & (warped.sum(-1) > 0)
        crop = real["images"][i].permute(1, 2, 0).numpy()
        assert m.sum() > 100 and np.abs(crop - warped)[m].mean() < 0.04, i


def test_unreadable_crop_replaced_within_its_clip(frame_tree, tmp_path):
    root, det = frame_tree
    store, _ = prepare_frames(folder_clips(root), tmp_path / "cache", 64, detector=det)
    Path(store.paths[1]).write_bytes(b"broken png")
    rgba, used = store.read([1, 1, 5])
    assert used.tolist() == [2, 2, 5] and store.clip[2] == store.clip[1]
    assert [p for p, _ in store.drain_failures()] == [store.paths[1]] and store.drain_failures() == []


def test_train_on_frame_folders_workers_same_model(frame_tree, tmp_path):
    root, det = frame_tree
    cfg = cfglib.replace(frames_cfg(), {"data": {"cache_dir": str(tmp_path / "cache")}})
    r0 = train(root, tmp_path / "w0", config=cfg, progress=False, detector=det)
    r2 = train(root, tmp_path / "w2", config=cfglib.replace(cfg, {"data": {"workers": 2}}), progress=False,
               detector=det)
    a = torch.load(r0 / "checkpoint.pt", weights_only=True)["models"]["cest"]
    b = torch.load(r2 / "checkpoint.pt", weights_only=True)["models"]["cest"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = _log(r0)
    frames = [r for r in rows if r.get("event") == "frames"]
    assert frames[0]["frames"] == 16 and frames[0]["bad_frames"] == 1 and frames[0]["no_face"] == 1
    bad = [r for r in rows if r.get("event") == "bad_input"]
    assert [Path(r["path"]).name for r in bad] == ["zz_corrupt.jpg"] and bad[0]["stage"] == "prepare"
    assert [r["workers"] for r in _log(r2) if r.get("event") == "start"] == [2]


def test_corrupt_crop_mid_training_logged_and_replaced(frame_tree, tmp_path):
    root, det = frame_tree
    cache = tmp_path / "cache"
    store, _ = prepare_frames(folder_clips(root), cache, 64, detector=det)
    for p in store.paths[::2]:                                   # half the crops: every batch meets one
        Path(p).write_bytes(b"\x89PNG broken")
    cfg = cfglib.replace(frames_cfg(), {"data": {"cache_dir": str(cache)}})
    run = train(root, tmp_path / "run", config=cfg, progress=False, detector=det)
    rows = _log(run)
    bad = {r["path"] for r in rows if r.get("event") == "bad_input" and "stage" not in r}
    assert bad and bad <= set(store.paths[::2])
    assert [r for r in rows if "bad_inputs" in r][-1]["bad_inputs"] == len(bad)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4


def test_cli_trains_on_a_prepared_frame_tree(frame_tree, tmp_path):
    """``voiceface train cest --data FOLDER``: the crops prepared before are reused (no detector needed)."""
    root, det = frame_tree
    prepare_frames(folder_clips(root), root / ".cest_cache", 64, detector=det)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfglib.to_dict(frames_cfg())))
    out = subprocess.run([sys.executable, "-m", "voiceface.cli", "train", "cest", "--data", str(root), "--out",
                          str(tmp_path / "run"), "--config", str(cfg_file)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = _log(tmp_path / "run")
    assert [r for r in rows if r.get("event") == "frames"][0]["prepared_clips"] == 0
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 4
    from voiceface.errors import InputError
    from voiceface.methods.cest.evaluate import evaluate

    with pytest.raises(InputError, match="real frame folders"):       # no 3D truth: pointed at the benchmarks
        evaluate(tmp_path / "run")


def test_sim_batches_keep_their_seeds(clip_world):
    """Rank 0 draws what the single-process run drew before DDP (default_rng([seed, step])); rank 1 differs."""
    from voiceface.methods.cest.data import sample_batch

    cfg = frames_cfg()
    bank = load_sim_clips(clip_world, ("train",))
    idx, partners = sample_batch(bank, np.random.default_rng([cfg.seed, 3]), 2, 2)
    b0, b1 = Batches(bank, cfg, 0)(3), Batches(bank, cfg, 1)(3)
    assert torch.equal(b0["images"], bank.tensors(idx)["images"]) and torch.equal(b0["partners"],
                                                                                   torch.from_numpy(partners))
    assert not torch.equal(b0["images"], b1["images"])


def test_two_gloo_ranks_equal_parameters_one_checkpoint(frame_tree, tmp_path, two_ranks):
    """torchrun, 2 CPU ranks on the frame tree: rank 0 prepares the crop cache alone (rank 1 never detects),
    parameters equal after training, one checkpoint, one log."""
    root, det = frame_tree
    np.savez(tmp_path / "table.npz", **det.table)
    cfg = cfglib.replace(frames_cfg(), {"data": {"cache_dir": str(tmp_path / "cache")}})
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfglib.to_dict(cfg)))
    p0, p1 = two_ranks.run("voiceface.methods.cest.train", setup=f"""
        import json
        import numpy as np
        from voiceface import config as cfglib
        from voiceface.errors import InputError
        from voiceface.face.detect import Face
        from voiceface.methods.cest.config import CESTConfig
        table = dict(np.load({str(tmp_path / 'table.npz')!r}))
        calls = [0]
        class Det:
            def find(self, image, path=None):
                calls[0] += 1
                name = str(path).split("/")[-1]
                if name not in table:
                    raise InputError(path, "no face")
                return Face(box=(0, 0, 1, 1), score=1.0, landmarks=table[name])
        cfg = cfglib.from_dict(CESTConfig, json.loads(open({str(cfg_file)!r}).read()))
    """, call=f"T.train({str(root)!r}, {str(tmp_path / 'run')!r}, config=cfg, progress=False, detector=Det())",
        after=f"open({str(tmp_path)!r} + f'/calls_rank{{d.get_rank()}}', 'w').write(str(calls[0]))")
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("*.pt")) == ["checkpoint.pt"]
    rows = _log(run)
    starts = [r for r in rows if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2
    assert len([r for r in rows if r.get("event") == "frames"]) == 1
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2, 3, 4]
    assert int((tmp_path / "calls_rank0").read_text()) == 17 and int((tmp_path / "calls_rank1").read_text()) == 0
    models = torch.load(run / "checkpoint.pt", weights_only=True)["models"]
    two_ranks.assert_equal(p0, p1, models)
    ckpt = models["cest"]
    # the ranks trained on different batches: a single-process run of the same config ends elsewhere
    single = train(root, tmp_path / "single", config=cfg, progress=False, detector=det)
    alone = torch.load(single / "checkpoint.pt", weights_only=True)["models"]["cest"]
    assert any(not torch.equal(alone[k], ckpt[k]) for k in ckpt)


def test_real_photos_as_clips_with_dlib(orl_faces, tmp_path):
    """Real faces (ORL, greyscale .pgm) arranged as two 'videos' per person, the default face front end (dlib):
    prepared, streamed and trained end to end."""
    pytest.importorskip("dlib")
    root = tmp_path / "orl_clips"
    people = sorted(p for p in orl_faces.iterdir() if p.is_dir())[:2]
    for person in people:
        photos = sorted(person.glob("*.pgm"))[:6]
        for v, chunk in enumerate((photos[:3], photos[3:])):
            d = root / person.name / f"video{v}"
            d.mkdir(parents=True)
            for ph in chunk:
                (d / ph.name).write_bytes(ph.read_bytes())
    run = train(root, tmp_path / "run", config=frames_cfg(), progress=False)
    frames = [r for r in _log(run) if r.get("event") == "frames"][0]
    assert frames["clips"] == 4 and frames["frames"] + frames["no_face"] == 12 and frames["frames"] >= 8
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    crops = sorted((root / ".cest_cache").rglob("*.png"))
    assert len(crops) == frames["frames"]
    rgba = np.asarray(Image.open(crops[0]))
    assert rgba.shape == (64, 64, 4) and (rgba[..., 3] > 0).mean() > 0.2     # a face mask in the alpha channel
