"""Shapes of the Table 3.2 networks and the Algorithm 1 phase isolation."""
from __future__ import annotations


import pytest
import torch

from voiceface.methods.gan.loss import GANLoss
from voiceface.methods.gan.model import FaceCritics, Generator, VoiceEmbedNet


@pytest.mark.parametrize("t0", [1, 100, 437, 1000])
def test_voice_net_shapes(t0):
    net = VoiceEmbedNet().eval()
    x = torch.randn(2, 64, t0)
    t = t0
    for _ in range(5):
        t = (t - 1) // 2 + 1        # PyTorch k3/s2/p1; Table 3.2 writes ceil, which is one more for even t
    assert net.net(x).shape == (2, 64, t)
    e = net(x)
    assert e.shape == (2, 64)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))


def test_generator_and_critics_shapes():
    g = Generator()
    f = g(torch.randn(5, 64))
    assert f.shape == (5, 3, 64, 64)
    assert [m.kernel_size for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)] == [(4, 4)] * 5 + [(1, 1)]
    for share in (True, False):
        c = FaceCritics(7, share_trunk=share)
        d, k = c(f)
        assert d.shape == (5,) and k.shape == (5, 7)
        shared = {id(p) for p in c.d_parameters()} & {id(p) for p in c.c_parameters()}
        assert bool(shared) == share


def _snapshot(*modules):
    return [{k: v.detach().clone() for k, v in m.named_parameters()} for m in modules]


def _changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}


@pytest.mark.parametrize("share", [True, False])
def test_algorithm1_phases_update_only_their_network(share):
    torch.manual_seed(0)
    g = Generator(64, (32, 16, 16, 8, 8))
    c = FaceCritics(4, (8, 8, 16, 16, 16), share_trunk=share)
    opt = lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999))  # noqa: E731
    loss = GANLoss(g, c, opt(g.parameters()), opt(c.d_parameters()), opt(c.c_parameters()))
    e = torch.nn.functional.normalize(torch.randn(6, 64), dim=1)
    real, rid, vid = torch.rand(6, 3, 64, 64) * 2 - 1, torch.randint(0, 4, (6,)), torch.randint(0, 4, (6,))
    d_names = {n for n, p in c.named_parameters() if any(p is q for q in c.d_parameters())}
    c_names = {n for n, p in c.named_parameters() if any(p is q for q in c.c_parameters())}

    gb, cb = _snapshot(g, c)
    out = loss.d_step(real, g(e))
    assert _changed(gb, g) == set() and _changed(cb, c) == d_names and "loss/d_real" in out
    assert not any(n.startswith("head_c") for n in _changed(cb, c))

    gb, cb = _snapshot(g, c)
    loss.c_step(real, rid)
    assert _changed(gb, g) == set() and _changed(cb, c) == c_names
    assert not any(n.startswith("head_d") for n in _changed(cb, c))

    gb, cb = _snapshot(g, c)
    out = loss.g_step(g(e), vid)
    assert _changed(cb, c) == set() and _changed(gb, g) == {n for n, _ in g.named_parameters()}
    assert all(p.requires_grad for p in c.parameters())          # critics re-enabled after the G step
    assert {"loss/g_d", "loss/g_c"} <= set(out)
