"""The GAN on the shared input pipeline: DataLoader workers train the same model, bf16 autocast on CPU (fp16
refused), unreadable files mid-training are logged, counted and replaced, and two gloo ranks under torchrun end
with equal parameters and one checkpoint."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fakeworld import PRIOR, TINY
from voiceface.errors import ConfigError
from voiceface.methods.gan.train import train


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _models(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["models"]


def test_workers_train_the_same_model(gan_world, gan_run, tmp_path):
    run = train(gan_world, tmp_path / "w2", overrides=[*TINY, "data.workers=2"], seed=0, progress=False)
    a, b = _models(gan_run), _models(run)
    for part in a:
        for k, t in a[part].items():
            assert torch.equal(t, b[part][k]), (part, k)
    assert [r["workers"] for r in _rows(run / "log.jsonl") if r.get("event") == "start"] == [2]


def test_bf16_steps_on_cpu_give_finite_losses_and_fp16_is_refused(gan_world, tmp_path):
    run = train(gan_world, tmp_path / "bf16", overrides=[*TINY, "precision=bf16"], seed=0, progress=False)
    for log in (run / "log.jsonl", run / "encoder" / "log.jsonl"):
        rows = _rows(log)
        assert [r["precision"] for r in rows if r.get("event") == "start"] == ["bf16"]
        losses = [v for r in rows for k, v in r.items() if k.startswith("loss/")]
        assert losses and all(v is not None and np.isfinite(v) for v in losses)
    with pytest.raises(ConfigError, match="fp16"):
        train(gan_world, tmp_path / "fp16", overrides=[*TINY, "precision=fp16"], seed=0, progress=False)


def test_corrupt_files_mid_training_are_logged_and_replaced(gan_world, tmp_path):
    from voiceface.data.manifest import read_manifest
    from voiceface.methods.gan.train import voice_bank

    world = tmp_path / "world"
    shutil.copytree(gan_world, world, ignore=shutil.ignore_patterns("cache"))
    m = read_manifest(world / "manifest.csv")
    voices = voice_bank("own", [it for it in m if it.modality == "voice" and it.split == "train"], m, tmp_path)
    bad_npy = voices._path_of(0)                          # features cached before training, as a shared cache is
    Path(bad_npy).write_bytes(b"\x93NUMPY garbage")
    face = next(it for it in m if it.modality == "face" and it.split == "train")
    bad_png = world / face.extra["path64"]
    bad_png.write_bytes(b"not a png")
    run = train(world, tmp_path / "run", overrides=[*TINY, "data.voice_memory_mb=0", "data.face_memory_mb=0"],
                seed=0, progress=False)
    rows = _rows(run / "log.jsonl") + _rows(run / "encoder" / "log.jsonl")   # F_e pretraining reads voices first
    assert {r["path"] for r in rows if r.get("event") == "bad_input"} == {str(bad_npy), str(bad_png)}
    assert max(r.get("bad_inputs", 0) for r in _rows(run / "log.jsonl")) >= 1
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6


def test_two_gloo_ranks_equal_parameters_one_checkpoint(gan_world, tmp_path, two_ranks):
    """torchrun, 2 CPU ranks: per-rank batches, DDP-synchronised G and D/C, rank 0 alone writes."""
    p0, p1 = two_ranks.run("voiceface.methods.gan.train", call=(   # spied: the last fit, the GAN's
        f"T.train({str(gan_world)!r}, {str(tmp_path / 'run')!r}, overrides={TINY!r}, progress=False)"))
    run = tmp_path / "run"
    assert sorted(p.name for p in run.rglob("*.pt")) == ["checkpoint.pt", "checkpoint.pt"]   # GAN + F_e runs
    starts = [r for r in _rows(run / "log.jsonl") if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2           # rank 0 alone writes the log
    two_ranks.assert_equal(p0, p1, _models(run))


def test_two_gloo_ranks_with_the_face_prior(gan_world, tmp_path, two_ranks):
    """The face prior's autoencoder trains DDP-wrapped before the GAN; both ranks then hold the same generator
    (decoder and voice-to-code map) and critics, and the prior is a third run folder."""
    p0, p1 = two_ranks.run("voiceface.methods.gan.train", call=(
        f"T.train({str(gan_world)!r}, {str(tmp_path / 'run')!r}, overrides={TINY + PRIOR!r}, progress=False)"))
    run = tmp_path / "run"
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*.pt")) == [
        "checkpoint.pt", "encoder/checkpoint.pt", "prior/checkpoint.pt"]
    two_ranks.assert_equal(p0, p1, _models(run))
