"""engine.precision: the one mixed-precision helper of every method."""
from __future__ import annotations

import pytest
import torch

from voiceface.engine.precision import Precision
from voiceface.errors import ConfigError


def test_fp16_on_cpu_and_unknown_names_are_refused_in_one_line():
    for name, words in (("fp16", "CUDA"), ("half", "not one of")):
        with pytest.raises(ConfigError, match=words) as e:
            Precision.resolve(name, "cpu")
        assert "\n" not in str(e.value)


def test_bf16_autocasts_forward_passes_on_cpu_and_fp32_does_not():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    bf16, fp32 = Precision.resolve("bf16", "cpu"), Precision.resolve("fp32", "cpu")
    assert bf16.scaler is None and fp32.scaler is None
    with bf16.autocast():
        y = lin(x)
    with fp32.autocast():
        z = lin(x)
    assert y.dtype == torch.bfloat16 and z.dtype == torch.float32
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    bf16.backward(y.float().square().mean())
    before = lin.weight.detach().clone()
    bf16.step(opt)
    bf16.update()
    assert lin.weight.dtype == torch.float32 and not torch.equal(before, lin.weight)


def test_autocast_modules_runs_only_those_modules_in_bf16_with_float32_outputs():
    torch.manual_seed(0)
    net, other = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)
    x = torch.randn(4, 16)
    want = net(x)
    Precision.resolve("bf16", "cpu").autocast_modules(net)
    y = net(x)
    assert y.dtype == torch.float32 and not torch.equal(y, want) and torch.allclose(y, want, atol=0.1)
    assert torch.equal(other(x), torch.nn.functional.linear(x, other.weight, other.bias))
    assert set(net.state_dict()) == {"weight", "bias"}


def test_the_loss_scale_is_checkpointed_and_restored(tmp_path):
    from voiceface.engine import Run
    from voiceface.engine.checkpoint import load_checkpoint
    from voiceface.engine.loop import Parts, checkpoint, restore

    def parts(init_scale: float) -> tuple[Parts, Precision]:     # fp16's scaler, built on CPU for the test
        prec = Precision("fp16", torch.device("cpu"), torch.amp.GradScaler("cpu", init_scale=init_scale))
        return Parts({"m": torch.nn.Linear(2, 2)}, schedulers=prec.states()), prec

    assert Precision.resolve("fp32", "cpu").states() == {}
    saved, prec = parts(1024.0)
    prec.scaler.scale(torch.ones(()))                              # a training step's first use
    prec.scaler.update(new_scale=96.0)                             # the scale the run had reached
    run = Run.create(tmp_path / "r", "toy", {})
    checkpoint(run, saved, method="toy", config={}, step=3)
    fresh, prec2 = parts(2.0 ** 16)
    assert restore(fresh, load_checkpoint(run.checkpoint_path)) == 3 and prec2.scaler.get_scale() == 96.0
