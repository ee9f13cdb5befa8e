"""CEST objectives (Sec. 4.3.3): masked L1 photometric loss (Eq. 4.9), reflectance consistency and symmetry as
cross-frame reconstruction terms, full (Eq. 4.10, 2 n^2 terms per clip) or stochastic (Eq. 4.11, O(n)),
landmark loss L_kp, coefficient energy L_rg and the total of Eq. 4.12.

Normalisations (the thesis gives the sums, not their scale): E (Eq. 4.9) is the mean absolute error over the
masked pixels and the three channels of one image, on the [0, 1] scale; both photometric objectives carry Eq.
4.11's 1/N (N frames in the minibatch); L_kp is the mean over the 68 points of the L1 distance in units of the
image side S; L_rg is the mean over the batch of ||alpha||^2 / K (alpha in standard-deviation units). The thesis's
own units (``kp_units=pixels``: L_kp in pixels; ``rg_form=sum``: ||alpha||^2 summed over K) weigh L_kp 64x and L_rg
52x more at S = 64, K = 52; presets ``cpu_kp`` / ``cpu_kp_b_iest`` use them.

Why the default preset does not learn identity shape (small world seed 0, measured with
:meth:`CESTLoss.term_gradients` and by swapping coefficients in a trained model): the photometric term barely
constrains identity shape, because the texture is unwrapped with the estimated geometry and re-rendered with the same
geometry. Its gradient on the identity coefficients is nearly orthogonal to the direction towards the truth (cosine
0.02-0.08) and the viewpoint absorbs the shape: at the learned viewpoint the true identity scores L_ph 0.2150 against
0.2138 for the mean shape, while at the true viewpoint it scores 0.1943 against 0.2180. In the default units the
landmark term, whose gradient does point towards the truth (cosine 0.10-0.11), is 4x weaker than the photometric one
(gradient norms 0.0067 vs 0.025 at 300 steps); in the thesis's units it is 17x stronger (0.43).

What limits ``cpu_kp`` at ~0.92x the mean shape's error (issue 14, small world seed 0; "all" = the 505 test frames,
the evaluation uses 48): not the landmark signal: fitting identity (45 coefficients) + expression to the true 2D
landmarks by this L_kp + 0.01 L_rg from the true viewpoint reaches 0.46x (residual 0.09 px per point), per frame as
per clip. The encoders fit the landmarks far less closely (L_kp ~1.1 px at 1000 steps) and are still improving:
2000 steps give L_kp 0.80 px and 0.875x (all: 0.865; training people 0.783), 2250 (``cpu_kp_long`` then, 389 s on
one idle core) L_kp 0.75 px and 0.841x (all: 0.836), 3200 all: 0.817, and 3200 with the lr decayed to 0 by a
half-cosine (``cpu_kp_long`` since) all: 0.813 (mean of seeds 0-5: 0.839). Neither
mirroring (``data.flip``: all 0.920) nor a cross-frame identity constraint (``kp_consistency``: all 0.917) helped
at 1000 steps, nor did 1,140 training people of a ``video`` world at 1000 steps (0.98 on the 48 frames; 0.936 on
that world's own test people, 0.903 on its training people): at this step budget the encoders underfit.
"""
from __future__ import annotations


import torch

from ...engine.dist import unwrap
from ...engine.precision import Precision
from .config import LossConfig
from .model import CEST


def photometric(image: torch.Tensor, rendered: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 4.9, ``||M (x) I - M (x) I_hat||_1`` per image, as a mean over masked pixels and channels.

    Args:
        image: (B, 3, S, S).  rendered: (B, k, 3, S, S) k renders of each image.  mask: (B, 1, S, S) in {0, 1}.
    Returns:
        (B, k) errors E.
    """
    diff = (rendered - image[:, None]).abs() * mask[:, None]                    # (B, k, 3, S, S)
    return diff.sum((2, 3, 4)) / (3.0 * mask.sum((1, 2, 3)).clamp_min(1.0))[:, None]


def landmark_loss(verts_screen: torch.Tensor, lm_index: torch.Tensor, landmarks: torch.Tensor, size: int
                  ) -> torch.Tensor:
    """L_kp: mean over frames and the 68 points of ``||Q_i(k_j) - q_i(j)||_1`` / ``size`` (S: fractions of the
    image side; 1: the thesis's pixels). verts_screen (B, V, 3), lm_index (68,), landmarks (B, 68, 2) pixels."""
    return (verts_screen[:, lm_index, :2] - landmarks).abs().sum(-1).mean() / size


def cross_frame_landmarks(model: CEST, out: dict[str, torch.Tensor], partners: torch.Tensor) -> torch.Tensor:
    """Projected shapes (B, V, 3) of every frame with its identity coefficients swapped for its partner's
    (``partners[:, 0]``), its own expression coefficients and viewpoint kept (``LossConfig.kp_consistency``)."""
    from ...face3d import geometry

    coeffs = out["coeffs"]
    swapped = torch.cat([coeffs[partners[:, 0], :model.n_id], coeffs[:, model.n_id:]], 1)    # (B, Ki + Ke)
    return geometry.project(model.shape_from_coeffs(swapped), out["viewpoint"])


def coefficient_energy(coeffs: torch.Tensor, form: str = "mean") -> torch.Tensor:
    """L_rg of coeffs (B, K): ``mean`` = mean over the batch of ||alpha||^2 / K; ``sum`` = the thesis's
    1/N sum_i ||alpha_i||^2 (K times larger, so lambda2 = 0.1 means what it means in the thesis)."""
    e = coeffs.pow(2).sum(1).mean()
    return e if form == "sum" else e / coeffs.shape[1]


def reflectance_sets(model: CEST, refl: torch.Tensor, partners: torch.Tensor, cfg: LossConfig
                     ) -> tuple[torch.Tensor, list[str]]:
    """The reflectances each frame is re-rendered with, for the configured objective.

    Args:
        refl: (B, V, 3) R_i.  partners: (B, P) frame indices: column 0 of Eq. 4.11's randomly chosen other frame j
            (stochastic), or every frame of i's clip (full, P = n, i itself included).
    Returns:
        (B, k, V, 3) reflectances and k term labels (``own``, ``other``, ``own_flip``, ``other_flip``).
    """
    sets, labels = [], []
    flipped = model.flip(refl)
    own_only = not cfg.consistency and not cfg.symmetry
    if cfg.objective == "full" and not own_only:
        cols = partners if cfg.consistency else torch.arange(len(refl), device=refl.device)[:, None]
        sets.append(refl[cols])                                                 # R_j, j in the clip (B, P, V, 3)
        labels += ["other"] * cols.shape[1]
        if cfg.symmetry:
            sets.append(flipped[cols])                                          # R_j^x
            labels += ["other_flip"] * cols.shape[1]
        return torch.cat(sets, 1), labels
    if cfg.self_term or own_only:
        sets.append(refl[:, None])
        labels.append("own")
    if cfg.consistency:
        sets.append(refl[partners[:, 0]][:, None])                              # R_j (Eq. 4.11)
        labels.append("other")
    if cfg.symmetry:
        sets.append(flipped[:, None])                                           # R_i^x (Eq. 4.11)
        labels.append("own_flip")
    return torch.cat(sets, 1), labels


class CESTLoss:
    """Eq. 4.12 ``L = L_ph + lambda1 L_kp + lambda2 L_rg`` with L_ph from Eq. 4.10 or 4.11 (plus, when
    ``kp_consistency`` > 0, ``lambda1 kp_consistency L_kp`` of :func:`cross_frame_landmarks`).

    One named phase, ``reconstruction``: forward the frames, re-render each with the reflectance sets of the
    objective, backpropagate the total and step the optimiser.
    """

    phases = ("reconstruction",)

    def __init__(self, cfg: LossConfig):
        self.cfg = cfg

    def __call__(self, model: CEST, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``model``: the CEST module or its DDP wrapper; ``batch``: images (B, 3, S, S), masks (B, 1, S, S),
        landmarks (B, 68, 2), partners (B, P). Returns: total, photometric, landmark, regulariser and
        landmark_consistency (scalars), ``terms`` (B, k) E values and the forward's ``out``."""
        out = model(batch["images"])                   # through the DDP wrapper when there is one
        model = unwrap(model)                          # rendering and the model's tables: the module itself
        sets, _ = reflectance_sets(model, out["reflectance"], batch["partners"], self.cfg)
        shading = model.shading(out["shape"], out["viewpoint"], out["light"])
        rendered = model.render(out["verts_screen"], shading, sets, face_id=out["face_id"])["image"]  # (B, k, 3, S, S)
        terms = photometric(batch["images"], rendered, batch["masks"])                 # (B, k)
        l_ph = terms.sum(1).mean()                                                     # 1/N sum_i sum_terms
        l_kp = landmark_loss(out["verts_screen"], model.face.landmarks68, batch["landmarks"], self.kp_size(model))
        l_rg = coefficient_energy(out["coeffs"], self.cfg.rg_form)
        total = l_ph + self.cfg.lambda_kp * l_kp + self.cfg.lambda_rg * l_rg
        l_kpc = torch.zeros_like(l_kp)
        if self.cfg.kp_consistency:
            q_other = cross_frame_landmarks(model, out, batch["partners"])
            l_kpc = landmark_loss(q_other, model.face.landmarks68, batch["landmarks"], self.kp_size(model))
            total = total + self.cfg.lambda_kp * self.cfg.kp_consistency * l_kpc
        return {"total": total, "photometric": l_ph, "landmark": l_kp, "regulariser": l_rg,
                "landmark_consistency": l_kpc, "terms": terms, "out": out}

    def kp_size(self, model: CEST) -> int:
        """Divisor of L_kp: the image side S (``kp_units=image``) or 1 (``pixels``, the thesis's units)."""
        return 1 if self.cfg.kp_units == "pixels" else model.cfg.image_size

    def term_gradients(self, model: CEST, batch: dict[str, torch.Tensor], true_coeffs: torch.Tensor | None = None
                       ) -> dict[str, dict[str, float]]:
        """Diagnostics: per weighted term of Eq. 4.12 (``photometric``, ``landmark``, ``regulariser``) the gradient
        w.r.t. the predicted identity coefficients alpha (B, Ki): its norm (``norm``, mean over frames of the
        per-frame L2 norm, times N so it does not shrink with the batch) and, given ``true_coeffs`` (B, Ki), the
        cosine between the descent direction -g and alpha_true - alpha over the batch (``cos_to_truth``; > 0: the
        term pulls the shape towards the truth)."""
        losses = self(model, batch)
        coeffs = losses["out"]["coeffs"]
        ki = unwrap(model).n_id
        weights = {"photometric": 1.0, "landmark": self.cfg.lambda_kp, "regulariser": self.cfg.lambda_rg}
        out = {}
        for name, w in weights.items():
            g = torch.autograd.grad(w * losses[name], coeffs, retain_graph=True, allow_unused=True)[0]
            g = torch.zeros_like(coeffs) if g is None else g
            gi = g[:, :ki] * len(g)
            row = {"norm": float(gi.norm(dim=1).mean())}
            if true_coeffs is not None:
                d = (true_coeffs - coeffs[:, :ki]).detach()
                row["cos_to_truth"] = float(-(gi * d).sum() / (gi.norm() * d.norm()).clamp_min(1e-12))
            out[name] = row
        return out

    def step(self, model: CEST, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
             precision: Precision | None = None) -> dict[str, float]:
        """Phase ``reconstruction``: one Adam step on Eq. 4.12; returns the scalars to log. ``precision``
        (``engine.precision``, default fp32) scales the loss for fp16 (its autocast is set on the networks by
        ``Precision.autocast_modules``; the renderer stays float32)."""
        prec = precision or Precision.resolve("fp32", "cpu")
        optimizer.zero_grad(set_to_none=True)
        losses = self(model, batch)
        prec.backward(losses["total"])
        prec.step(optimizer)
        prec.update()
        keys = ("total", "photometric", "landmark", "regulariser")
        keys += ("landmark_consistency",) if self.cfg.kp_consistency else ()
        return {f"loss/{k}": float(losses[k].detach()) for k in keys}
