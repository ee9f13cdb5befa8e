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
