"""SfV on the shared input pipeline: DataLoader workers train the same model, bf16 autocast on CPU, an unreadable
recording is logged and counted in the run's log (and skipped), two gloo ranks under torchrun end with equal
parameters and one checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from voiceface.methods.sfv.train import Batches, train

SHORT = ["train.steps=4", "train.batch_size=8", "train.select_every=4", "train.checkpoint_every=8",
         "train.log_every=2", "select.repeats=2", "model.channels=[8,12,16,16]", "fit.components=8",
         "data.crop_min_s=1.0", "data.crop_max_s=1.5", "data.segment_s=1.5"]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _models(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["models"]


def test_workers_train_the_same_model_and_batches_follow_step_and_rank(tmp_path, synth_source):
    a = train(synth_source, tmp_path / "w0", overrides=SHORT, progress=False)
    b = train(synth_source, tmp_path / "w2", overrides=[*SHORT, "data.workers=2"], progress=False)
    for name in ("model", "best", "v2v"):
        for k, t in _models(a)[name].items():
            assert torch.equal(t, _models(b)[name][k]), (name, k)
    assert [r["workers"] for r in _rows(b) if r.get("event") == "start"] == [2]
    from voiceface.config import load_config
    from voiceface.methods.sfv.config import SfVConfig
    from voiceface.methods.sfv.train import build, load_triplets, v2v_setup

    cfg = load_config(SfVConfig, None, SHORT)
    data = load_triplets(synth_source, cfg)
    layout, _, _ = build(data, cfg, 0)
    v2v = v2v_setup(data, layout, 8)
    r0, r0b, r1 = (Batches(data, layout, v2v, cfg, r)(3) for r in (0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(r0, r0b)) and not torch.equal(r0[0], r1[0])


def test_bf16_steps_on_cpu_give_finite_losses(tmp_path, synth_source):
    run = train(synth_source, tmp_path / "run", overrides=[*SHORT, "precision=bf16"], progress=False)
    rows = _rows(run)
    assert [r["precision"] for r in rows if r.get("event") == "start"] == ["bf16"]
    losses = [r[k] for r in rows for k in ("loss/nll", "v2v/mse") if k in r]
    assert len(losses) == 4 and all(v is not None and np.isfinite(v) for v in losses)


def _pairs(root: Path, n: int = 24) -> Path:
    """A CSV of n people (half each gender) with one 1-s recording and a 65-landmark shape each; the first
    recording is corrupt."""
    rng = np.random.default_rng(0)
    rows = ["voice,mesh,identity,gender"]
    for i in range(n):
        wav = root / f"v{i}.wav"
        if i == 0:
            wav.write_bytes(b"RIFF\x00\x00not a wave file")
        else:
            sf.write(wav, rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
        np.save(root / f"s{i}.npy", rng.normal(0, 30, (65, 3)))
        rows.append(f"v{i}.wav,s{i}.npy,p{i:02d},{'m' if i % 2 else 'f'}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root / "pairs.csv"


def test_an_unreadable_recording_is_logged_and_counted(tmp_path):
    csv = _pairs(tmp_path)
    run = train(csv, tmp_path / "run", overrides=[*SHORT, "data.feature_norm=utterance"], progress=False)
    rows = _rows(run)
    assert [r["path"] for r in rows if r.get("event") == "bad_input"] == [str(tmp_path / "v0.wav")]
    assert [r["bad_inputs"] for r in rows if "loss/nll" in r] == [1, 1]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4


def test_two_gloo_ranks_equal_parameters_one_checkpoint(tmp_path, synth_source, two_ranks):
    # parameters of the trained nets; everything (BatchNorm statistics, scores too) of the selected ones
    p0, p1 = two_ranks.run("voiceface.methods.sfv.train", full=("best",), call=(
        f"T.train({synth_source!r}, {str(tmp_path / 'run')!r}, overrides={SHORT!r}, progress=False)"))
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("*.pt")) == ["checkpoint.pt"]
    rows = _rows(run)
    starts = [r for r in rows if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2           # rank 0 alone writes the log
    assert [r["step"] for r in rows if "loss/nll" in r] == [2, 4]
    two_ranks.assert_equal(p0, p1, _models(run))
