"""DIMNet on the input pipeline: DataLoader workers train the same model, unreadable files mid-training are logged
and replaced, two gloo ranks under torchrun end with equal parameters and one checkpoint."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from voiceface import config as cfglib
from voiceface.data.loaders import FaceBank, VoiceBank
from voiceface.data.manifest import read_manifest
from voiceface.methods.dimnet import train
from voiceface.methods.dimnet.train import Batches, load_train_data

from test_dimnet import tiny_config


def _models(run):
    return torch.load(Path(run) / "checkpoint.pt", weights_only=True)["models"]


def test_workers_train_the_same_model(fake_world, tmp_path):
    cfg = tiny_config(covariates="IG")
    train(fake_world, tmp_path / "w0", config=cfg, progress=False)
    train(fake_world, tmp_path / "w2", config=cfglib.replace(cfg, {"data": {"workers": 2}}), progress=False)
    a, b = _models(tmp_path / "w0"), _models(tmp_path / "w2")
    for part in ("voice", "face", "heads"):
        for k, t in a[part].items():
            assert torch.equal(t, b[part][k]), (part, k)
    starts = [json.loads(line) for line in (tmp_path / "w2" / "log.jsonl").read_text().splitlines()]
    assert [r["workers"] for r in starts if r.get("event") == "start"] == [2]


def test_batches_differ_by_rank_and_repeat_by_step(fake_world, tmp_path):
    cfg = tiny_config()
    td = load_train_data(read_manifest(fake_world / "manifest.csv"), cfg, tmp_path, progress=False)
    r0, r0b, r1 = Batches(td, cfg, 0)(3), Batches(td, cfg, 0)(3), Batches(td, cfg, 1)(3)
    assert torch.equal(r0["voices"], r0b["voices"]) and torch.equal(r0["faces"], r0b["faces"])
    assert not torch.equal(r0["faces"], r1["faces"])


def test_corrupt_files_mid_training_are_logged_and_replaced(fake_world, tmp_path):
    world = tmp_path / "world"
    shutil.copytree(fake_world, world, ignore=shutil.ignore_patterns("cache"))
    m = read_manifest(world / "manifest.csv")
    train_items = [it for it in m if it.split == "train"]
    cache = tmp_path / "cache"
    voices = VoiceBank(train_items, cache)                 # features cached before training, as a shared cache is
    bad_npy = voices._path_of(0)
    Path(bad_npy).write_bytes(b"\x93NUMPY garbage")
    face = next(it for it in train_items if it.modality == "face" and it.identity == "p00")
    bad_png = world / face.extra["path64"]
    bad_png.write_bytes(b"not a png")
    cfg = tiny_config(covariates="IG", data={"cache_dir": str(cache), "face_memory_mb": 0,
                                             "voices_per_batch": 16, "faces_per_batch": 16})
    run = train(world, tmp_path / "run", config=cfg, progress=False)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    bad = {r["path"] for r in rows if r.get("event") == "bad_input"}
    assert bad == {str(bad_npy), str(bad_png)}
    assert [r for r in rows if "bad_inputs" in r][-1]["bad_inputs"] == 2
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6
    # the tolerant read returns the replacement's index, so labels follow it
    faces = FaceBank(train_items, 64, root=world, memory_mb=0)
    i = faces.items.index(face)
    imgs, used = faces.read([i, i])
    assert imgs.shape == (2, 64, 64, 3) and used.tolist() == [i + 1, i + 1]
    assert [p for p, _ in faces.drain_failures()] == [str(bad_png)] and faces.drain_failures() == []


def test_two_gloo_ranks_equal_parameters_one_checkpoint(fake_world, tmp_path, two_ranks):
    """torchrun, 2 CPU ranks: rank 0 fills a fresh feature cache first; parameters equal after training."""
    cfg = tiny_config(covariates="IG", data={"cache_dir": str(tmp_path / "cache")})
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfglib.to_dict(cfg)))
    p0, p1 = two_ranks.run("voiceface.methods.dimnet.train", setup=f"""
        import json
        from voiceface import config as cfglib
        from voiceface.methods.dimnet.config import DIMNetConfig
        cfg = cfglib.from_dict(DIMNetConfig, json.loads(open({str(cfg_file)!r}).read()))
    """, call=f"T.train({str(fake_world)!r}, {str(tmp_path / 'run')!r}, config=cfg, progress=False)")
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("*.pt")) == ["checkpoint.pt"]
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    starts = [r for r in rows if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2           # rank 0 alone writes the log
    assert [r["step"] for r in rows if "lr" in r] == [2, 4, 6]
    assert len(list((tmp_path / "cache").glob("*.npy"))) > 0
    two_ranks.assert_equal(p0, p1, _models(run))


def test_bf16_steps_on_cpu_give_finite_losses(fake_world, tmp_path):
    """precision=bf16 (autocast on CPU): a few steps train, losses are finite, the run log records bf16."""
    run = train(fake_world, tmp_path / "run", config=tiny_config(precision="bf16"), progress=False)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["precision"] for r in rows if r.get("event") == "start"] == ["bf16"]
    losses = [v for r in rows for k, v in r.items() if k.endswith("/loss")]
    assert losses and all(v is not None and np.isfinite(v) for v in losses)
