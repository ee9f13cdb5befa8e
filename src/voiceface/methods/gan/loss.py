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

from .model import FaceCritics, Generator, diff_augment


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


# ------------------------------------------------------------------------------------------------ stable recipe
def d_adv_loss(kind: str, real_logit: torch.Tensor, fake_logit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's loss on (B,) real-side and (B,) fake-side logits, as two means: ``nonsat`` softplus(-r), softplus(f)
    (= Algorithm 1's cross-entropy); ``hinge`` relu(1 - r), relu(1 + f)."""
    if kind == "hinge":
        return F.relu(1 - real_logit).mean(), F.relu(1 + fake_logit).mean()
    if kind == "nonsat":
        return F.softplus(-real_logit).mean(), F.softplus(fake_logit).mean()
    raise ValueError(f"adversarial loss '{kind}' is not one of nonsat, hinge")


def g_adv_loss(kind: str, fake_logit: torch.Tensor) -> torch.Tensor:
    """G's loss on (B,) logits of its faces: ``nonsat`` softplus(-f) (Algorithm 1's log D(f^)); ``hinge`` -f."""
    return -fake_logit.mean() if kind == "hinge" else F.softplus(-fake_logit).mean()


def r1_penalty(critics: FaceCritics, real: torch.Tensor, e: torch.Tensor | None = None,
               create_graph: bool = True, s: torch.Tensor | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ||d D(f, e, s) / d f||^2 at real faces f (B, 3, 64, 64)
    (e (B, q) embeddings, s (B,) gender signs of the gender projection, None: left out)."""
    real = real.detach().requires_grad_(True)
    logit = critics(real, "d", e, s)                                     # (B,)
    (grad,) = torch.autograd.grad(logit.sum(), real, create_graph=create_graph)
    return grad.square().flatten(1).sum(1).mean()


def mismatched(e: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (B, q) rolled by one, and the (B,) bool mask of rows whose rolled identity differs from theirs."""
    return e.roll(1, 0), ids.roll(1, 0) != ids


def masked_gender_loss(logit: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary gender cross-entropy of (B,) logits (male = 1) against (B,) float labels (1 male, 0 female, -1 unknown:
    left out), and the bool correctness (K,) of the K known ones (a zero loss that keeps the graph when none is)."""
    known = y >= 0
    if not known.any():
        return logit.sum() * 0, known[known]
    loss = F.binary_cross_entropy_with_logits(logit[known], y[known])
    return loss, (logit[known] > 0) == (y[known] > 0.5)


class StableGANLoss:
    """The stable recipe as named phases over Algorithm 1's three networks (switches in ``GANConfig.stable``):

    * ``d_step``: adversarial loss (nonsat / hinge) on augmented real faces with their identity's voice embedding and
      on augmented fakes with the embedding they came from; with ``mismatch_weight`` real faces paired with another
      identity's embedding count as extra fakes (projection D only);
    * ``d_r1``: every ``r1_every`` steps, r1_gamma / 2 * R1 * r1_every on (augmented) real faces (lazy R1);
    * ``c_step``: Algorithm 1's identity cross-entropy of F_c on (augmented) real faces (label smoothing
      ``c_smoothing``; + with ``gender_weight``
      the gender cross-entropy of F_c's gender head on them, labels ``id_gender[real_id]``);
    * ``g_step``: G's adversarial loss + c_weight * F_c's cross-entropy on its augmented faces (+ recon_weight *
      the mean absolute pixel difference between F_g(e_j) and real face j, a face of voice j's identity, both
      average-pooled by ``recon_pool``: the identity labels as a direct regression target, paired batches only;
      + gender_weight * the gender head's cross-entropy on G's faces with labels ``id_gender[voice_id]``);
    * ``ema``: the generator EMA update (when ``ema`` is given).

    Issue 13 switches: ``gender_augment`` (a DiffAugment policy of the gender head's input alone: real faces in the
    C step, G's faces in the G step, each through a separate trunk forward) and a gender projection D (critics built
    with ``gender_projection``: real faces carry their identity's gender sign, G's faces their voice's, in every D
    forward; ``gender_mismatch_weight``: real faces with the opposite sign as extra fakes).
    """

    phases = ("d_step", "d_r1", "c_step", "g_step", "ema")

    def __init__(self, generator: Generator, critics: FaceCritics, opts: dict[str, torch.optim.Optimizer], cfg,
                 ema=None, id_gender: torch.Tensor | None = None):
        """``id_gender``: (k,) float gender of each identity label (1 male, 0 female, -1 unknown: left out of the
        gender terms); needed when ``cfg.gender_weight`` > 0."""
        self.generator, self.critics, self.opts, self.s, self.ema = generator, critics, opts, cfg, ema
        self.gproj = getattr(getattr(critics, "module", critics), "proj_g", None) is not None
        if (cfg.gender_weight > 0 or self.gproj) and id_gender is None:
            raise ValueError("stable.gender_weight / a gender projection D need the identities' genders (id_gender)")
        self.id_gender = id_gender
        self.policy = tuple(p for p in cfg.augment.split(",") if p)
        self.gpolicy = tuple(p for p in cfg.gender_augment.split(",") if p)

    def aug(self, x: torch.Tensor, gen: torch.Generator, tile: int = 1) -> torch.Tensor:
        return diff_augment(x, self.policy, gen, tile) if self.policy else x

    def sign(self, ids: torch.Tensor) -> torch.Tensor | None:
        """(B,) gender signs of identity labels ids (B,) for the gender projection (+1 male, -1 female, 0 unknown);
        None without one."""
        if not self.gproj:
            return None
        g = self.id_gender.to(ids.device)[ids]
        return torch.where(g < 0, torch.zeros_like(g), 2 * g - 1)

    def d_step(self, real, fake, e_real, e_fake, real_id, gen, voice_id=None) -> dict[str, float]:
        """real (m, 3, 64, 64) with e_real (m, q) and identity labels real_id (m,); fake (n, ...) detached here, with
        e_fake (n, q) and its voices' labels voice_id (n,) (needed by a gender projection D)."""
        opt = self.opts["d"]
        opt.zero_grad(set_to_none=True)
        m = len(real)
        tile = 2 if len(fake) == m else 1
        x = self.aug(torch.cat([real, fake.detach()]), gen, tile)
        s_real = self.sign(real_id)
        s = None if s_real is None else torch.cat([s_real, self.sign(voice_id)])
        logit = self.critics(x, "d", torch.cat([e_real, e_fake]), s)
        loss_real, loss_fake = d_adv_loss(self.s.loss, logit[:m], logit[m:])
        loss = loss_real + loss_fake
        out = {"loss/d_real": loss_real.item(), "loss/d_fake": loss_fake.item(),
               "d/real": logit[:m].mean().item(), "d/fake": logit[m:].mean().item()}
        if self.s.mismatch_weight > 0 and self.critics_has_projection():
            e_mis, keep = mismatched(e_real, real_id)
            if keep.any():
                s_mis = None if s_real is None else s_real.roll(1, 0)[keep]
                mis = self.critics(x[:m][keep], "d", e_mis[keep], s_mis)
                loss_mis = d_adv_loss(self.s.loss, mis.new_zeros(0), mis)[1]
                loss = loss + self.s.mismatch_weight * loss_mis
                out["loss/d_mismatch"] = loss_mis.item()
        if self.s.gender_mismatch_weight > 0 and s_real is not None and (s_real != 0).any():
            keep = s_real != 0
            mis = self.critics(x[:m][keep], "d", e_real[keep], -s_real[keep])
            loss_gm = d_adv_loss(self.s.loss, mis.new_zeros(0), mis)[1]
            loss = loss + self.s.gender_mismatch_weight * loss_gm
            out["loss/d_gender_mismatch"] = loss_gm.item()
        loss.backward()
        opt.step()
        return out

    def critics_has_projection(self) -> bool:
        return getattr(getattr(self.critics, "module", self.critics), "proj", None) is not None

    def d_r1(self, real, e_real, gen, step: int, real_id=None) -> dict[str, float]:
        if self.s.r1_gamma <= 0 or step % self.s.r1_every:
            return {}
        opt = self.opts["d"]
        opt.zero_grad(set_to_none=True)
        s = None if real_id is None else self.sign(real_id)
        r1 = r1_penalty(self.critics, self.aug(real, gen), e_real, s=s)
        (0.5 * self.s.r1_gamma * self.s.r1_every * r1).backward()
        opt.step()
        return {"loss/r1": r1.item()}

    def gender_loss(self, logit: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``masked_gender_loss`` of (B,) logits against the genders of identity labels ids (B,)."""
        return masked_gender_loss(logit, self.id_gender.to(logit.device)[ids])

    def c_step(self, real, real_id, gen) -> dict[str, float]:
        opt = self.opts["c"]
        opt.zero_grad(set_to_none=True)
        out = {}
        if self.s.gender_weight > 0 and not self.gpolicy:
            logits, g_logit = self.critics(self.aug(real, gen), "cg")     # (m, k), (m,)
        else:
            logits, g_logit = self.critics(self.aug(real, gen), "c"), None  # (m, k)
        if self.s.gender_weight > 0 and self.gpolicy:                     # the gender head on its own augmentation
            g_logit = self.critics(diff_augment(real, self.gpolicy, gen), "cg")[1]
        loss = loss_id = F.cross_entropy(logits, real_id, label_smoothing=self.s.c_smoothing)
        if g_logit is not None:
            loss_g, right = self.gender_loss(g_logit, real_id)
            loss = loss_id + loss_g
            out = {"loss/c_gender": loss_g.item(), "acc/c_gender": right.float().mean().item()}
        loss.backward()
        opt.step()
        return {**out, "loss/c_real": loss_id.item(), "acc/c_real": (logits.argmax(1) == real_id).float().mean().item()}

    def g_step(self, fake, e_fake, voice_id, gen, real=None) -> dict[str, float]:
        """fake (n, 3, 64, 64) with grad to F_g, e_fake (n, q), voice_id (n,); real (n, 3, 64, 64): face j of voice
        j's identity, the target of the ``recon_weight`` term (None: no term)."""
        params = list(self.critics.parameters())
        _set_requires_grad(params, False)
        out = {}
        try:
            self.opts["g"].zero_grad(set_to_none=True)
            s = self.sign(voice_id)
            if self.s.gender_weight > 0 and not self.gpolicy:
                d_logit, c_logit, g_logit = self.critics(self.aug(fake, gen), "all", e_fake, s)
            else:
                d_logit, c_logit = self.critics(self.aug(fake, gen), "both", e_fake, s)
            if self.s.gender_weight > 0 and self.gpolicy:
                g_logit = self.critics(diff_augment(fake, self.gpolicy, gen), "cg")[1]
            loss_d = g_adv_loss(self.s.loss, d_logit)
            loss_c = F.cross_entropy(c_logit, voice_id)
            loss = loss_d + self.s.c_weight * loss_c
            if self.s.gender_weight > 0:
                loss_g, right = self.gender_loss(g_logit, voice_id)
                loss = loss + self.s.gender_weight * loss_g
                out.update({"loss/g_gender": loss_g.item(), "acc/g_gender": right.float().mean().item()})
            if real is not None and self.s.recon_weight > 0:
                k = self.s.recon_pool
                loss_r = (F.avg_pool2d(fake, k) - F.avg_pool2d(real, k)).abs().mean() if k > 1 else \
                    (fake - real).abs().mean()
                loss = loss + self.s.recon_weight * loss_r
                out["loss/g_recon"] = loss_r.item()
            loss.backward()
            self.opts["g"].step()
        finally:
            _set_requires_grad(params, True)
        return {**out, "loss/g_d": loss_d.item(), "loss/g_c": loss_c.item(),
                "acc/c_fake": (c_logit.argmax(1) == voice_id).float().mean().item()}

    def step(self, e: torch.Tensor, voice_id: torch.Tensor, real: torch.Tensor, real_id: torch.Tensor,
             e_real: torch.Tensor, step: int, gen: torch.Generator) -> dict[str, float]:
        """One iteration: e (n, q) voice embeddings, real (m, 3, 64, 64) faces with e_real (m, q) embeddings of
        their identity; ``gen`` draws the augmentations (derived from the step by the caller)."""
        fake = self.generator(e)                                          # (n, 3, 64, 64)
        out = self.d_step(real, fake, e_real, e, real_id, gen, voice_id)
        out.update(self.d_r1(real, e_real, gen, step, real_id))
        out.update(self.c_step(real, real_id, gen))
        paired = self.s.paired_batches and len(real) == len(fake)
        out.update(self.g_step(fake, e, voice_id, gen, real if paired else None))
        if self.ema is not None:
            self.ema.update(step)
        return out
