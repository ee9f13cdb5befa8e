"""Algorithm 1 of the thesis (Sec. 3.2.1) as a loss object with three named phases.

Per iteration, with a minibatch of n voices (frozen embeddings e_i, identities y^v_i) and m real faces (f_j, y^f_j):

* ``d_step``: ascend  sum_i log(1 - F_d(f^_i)) + sum_j log F_d(f_j)        (updates F_d only; f^ detached)
* ``c_step``: ascend  sum_j log F_c(f_j)[y^f_j]                               (updates F_c only)
* ``g_step``: ascend  sum_i log F_c(f^_i)[y^v_i] + log F_d(f^_i)               (updates F_g only)

Ascending a log-likelihood is descending the (mean) cross-entropy, which is what each phase does. With a shared
trunk the D and C steps both update the trunk (each through its own optimiser), as in the thesis's implementation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import FaceCritics, Generator


def _set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


class GANLoss:
    """The three phases of Algorithm 1, each a forward + backward + optimiser step; each returns named scalars.

    ``opt_d`` must hold ``critics.d_parameters()``, ``opt_c`` ``critics.c_parameters()``, ``opt_g`` the generator's.
    """

    phases = ("d_step", "c_step", "g_step")

    def __init__(self, generator: Generator, critics: FaceCritics, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, opt_c: torch.optim.Optimizer):
        self.generator, self.critics = generator, critics
        self.opt_g, self.opt_d, self.opt_c = opt_g, opt_d, opt_c

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        """Algorithm 1 line 4. real: (m, 3, 64, 64) faces; fake: (n, 3, 64, 64) generated faces (detached here)."""
        self.opt_d.zero_grad(set_to_none=True)
        logit = self.critics(torch.cat([real, fake.detach()]), "d")   # (m + n,)
        real_logit, fake_logit = logit[:len(real)], logit[len(real):]
        loss_real = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        loss_fake = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        (loss_real + loss_fake).backward()
        self.opt_d.step()
        return {"loss/d_real": loss_real.item(), "loss/d_fake": loss_fake.item(),
                "d/real": torch.sigmoid(real_logit).mean().item(), "d/fake": torch.sigmoid(fake_logit).mean().item()}

    def c_step(self, real: torch.Tensor, real_id: torch.Tensor) -> dict[str, float]:
        """Algorithm 1 line 5. real: (m, 3, 64, 64); real_id: (m,) identity indices."""
        self.opt_c.zero_grad(set_to_none=True)
        logits = self.critics(real, "c")                              # (m, k)
        loss = F.cross_entropy(logits, real_id)
        loss.backward()
        self.opt_c.step()
        return {"loss/c_real": loss.item(), "acc/c_real": (logits.argmax(1) == real_id).float().mean().item()}

    def g_step(self, fake: torch.Tensor, voice_id: torch.Tensor) -> dict[str, float]:
        """Algorithm 1 line 6. fake: (n, 3, 64, 64) = F_g(F_e(v)) with grad to F_g; voice_id: (n,)."""
        params = list(self.critics.parameters())
        _set_requires_grad(params, False)
        try:
            self.opt_g.zero_grad(set_to_none=True)
            d_logit, c_logit = self.critics(fake)                   # (n,), (n, k)
            loss_d = F.binary_cross_entropy_with_logits(d_logit, torch.ones_like(d_logit))
            loss_c = F.cross_entropy(c_logit, voice_id)
            (loss_d + loss_c).backward()
            self.opt_g.step()
        finally:
            _set_requires_grad(params, True)
        return {"loss/g_d": loss_d.item(), "loss/g_c": loss_c.item(),
                "acc/c_fake": (c_logit.argmax(1) == voice_id).float().mean().item()}

    def step(self, embeddings: torch.Tensor, voice_id: torch.Tensor, real: torch.Tensor,
             real_id: torch.Tensor) -> dict[str, float]:
        """One iteration of Algorithm 1: embeddings (n, q) from the frozen F_e, real faces (m, 3, 64, 64)."""
        fake = self.generator(embeddings)                        # (n, 3, 64, 64)
        out = self.d_step(real, fake)
        out.update(self.c_step(real, real_id))
        out.update(self.g_step(fake, voice_id))
        return out
