"""data.pipeline + engine.fit: DataLoader workers give the same batches; failed reads are logged, counted, replaced."""
from __future__ import annotations

import numpy as np
import torch

from voiceface.data.pipeline import LoaderOptions, StepDataset, step_batches, to_device
from voiceface.engine import Parts, Run, fit


def _batch(step):
    rng = np.random.default_rng([7, step, 0])
    return {"x": torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32)),
            "n": rng.integers(0, 100, 5), "name": f"s{step}"}


class _Flaky:
    """A failure source: reports one failed read at steps 2 and 5 (as a bank would in the worker)."""

    def __init__(self):
        self.pending = []

    def note(self, step):
        if step in (2, 5):
            self.pending.append((f"/data/bad{step}.png", f"bad{step}.png: cannot read face image"))

    def drain_failures(self):
        out, self.pending = self.pending, []
        return out


def test_workers_give_the_same_batches_in_order():
    ds = StepDataset(_batch, 9)
    serial = list(step_batches(ds, 2))
    parallel = list(step_batches(ds, 2, LoaderOptions(workers=2, prefetch=3)))
    assert [s for s, _, _ in serial] == [s for s, _, _ in parallel] == list(range(2, 9))
    for (_, a, _), (_, b, _) in zip(serial, parallel):
        assert torch.equal(a["x"], b["x"]) and a["name"] == b["name"]
        assert isinstance(b["n"], np.ndarray) and np.array_equal(a["n"], b["n"])   # no default_convert
    state = torch.get_rng_state()
    list(step_batches(ds, 0, LoaderOptions(workers=1)))
    assert torch.equal(state, torch.get_rng_state())   # the loader leaves the global torch RNG alone


def test_to_device_recurses():
    b = to_device({"a": (torch.ones(1), [torch.zeros(2)]), "s": "x"}, torch.device("cpu"))
    assert torch.equal(b["a"][1][0], torch.zeros(2)) and b["s"] == "x"
    assert to_device(b, None) is b


def test_failed_reads_are_logged_and_counted(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    flaky = _Flaky()

    def batch_fn(step):
        flaky.note(step)
        return _batch(step)

    def step_fn(batch, step):
        loss = net(batch["x"]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    run = Run.create(tmp_path / "r", "toy", {})
    for workers in (0, 2):   # in the training process and from worker processes
        run.log_path.unlink(missing_ok=True)
        run.checkpoint_path.unlink(missing_ok=True)
        fit(run, Parts({"net": net}, {"sgd": opt}), method="toy", config={}, batch_fn=batch_fn, step_fn=step_fn,
            total_steps=8, log_every=4, checkpoint_every=100, progress=False, sources=(flaky,),
            loader=LoaderOptions(workers=workers))
        rows = run.read_log()
        events = [(r["step"], r["path"]) for r in rows if r.get("event") == "bad_input"]
        assert events == [(2, "/data/bad2.png"), (5, "/data/bad5.png")], workers
        assert [r.get("bad_inputs") for r in rows if "loss" in r] == [1, 2], workers
        assert [r["workers"] for r in rows if r.get("event") == "start"] == [workers]
