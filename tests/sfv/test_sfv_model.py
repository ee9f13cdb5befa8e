"""The stacked estimators (Table 5.2) are independent networks: batched training == sequential training."""
from __future__ import annotations

import torch

from voiceface.methods.sfv.loss import SfVLoss
from voiceface.methods.sfv.model import AMNet, stack_states, unstack_state, where_nets

CH = (8, 12, 16, 20)


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def test_shapes_and_positive_variance():
    net = AMNet(3, 5, n_mels=16, channels=CH)
    mean, var = net(torch.randn(4, 3, 16, 50))
    assert mean.shape == var.shape == (4, 3, 5)
    assert (var > 0).all()
    net_mse = AMNet(2, 5, n_mels=16, channels=CH, uncertainty=False)
    _, var = net_mse(torch.randn(4, 2, 16, 50))
    assert torch.equal(var, torch.ones_like(var))


def test_networks_do_not_interact():
    torch.manual_seed(0)
    net = AMNet(3, 2, n_mels=16, channels=CH).eval()
    x = torch.randn(2, 3, 16, 40)
    y = x.clone()
    y[:, 1] = torch.randn(2, 16, 40)   # change only network 1's input
    a, b = net(x)[0], net(y)[0]
    assert torch.allclose(a[:, 0], b[:, 0]) and torch.allclose(a[:, 2], b[:, 2])
    assert not torch.allclose(a[:, 1], b[:, 1])


def test_batched_training_equals_sequential():
    torch.manual_seed(0)
    m, steps = 2, 3
    singles = [AMNet(1, 4, n_mels=16, channels=CH) for _ in range(m)]
    stacked = AMNet(m, 4, n_mels=16, channels=CH)
    stacked.load_state_dict(stack_states([s.state_dict() for s in singles]))
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, m, 16, 24, generator=g), torch.randn(6, m, 4, generator=g)) for _ in range(steps)]
    loss_b = SfVLoss(stacked, _sgd(stacked), grad_clip=1.0)
    for x, t in batches:
        loss_b.estimator_step(x, t)
    for i, single in enumerate(singles):
        loss_s = SfVLoss(single, _sgd(single), grad_clip=1.0)
        for x, t in batches:
            loss_s.estimator_step(x[:, i:i + 1], t[:, i:i + 1])
        got = unstack_state(stacked.state_dict(), m, i)
        for k, v in single.state_dict().items():
            assert torch.allclose(got[k].float(), v.float(), atol=1e-4, rtol=1e-3), (i, k)


def test_where_nets_picks_per_network():
    a, b = AMNet(3, 2, n_mels=8, channels=CH), AMNet(3, 2, n_mels=8, channels=CH)
    mixed = where_nets(torch.tensor([True, False, True]), a.state_dict(), b.state_dict())
    for i, src in ((0, a), (1, b), (2, a)):
        want = unstack_state(src.state_dict(), 3, i)
        got = unstack_state(mixed, 3, i)
        assert all(torch.equal(got[k], want[k]) for k in want)
