"""The stable recipe's parts (spectral norm, R1, EMA, projection D, minibatch std, DiffAugment, config switches)
and a tiny stable run that trains, samples, stores its EMA generator and resumes exactly."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from voiceface import config as cfglib
from voiceface.engine import load_checkpoint
from voiceface.errors import ConfigError
from voiceface.methods.gan.config import PRESETS, GANConfig, StableConfig
from voiceface.methods.gan.loss import StableGANLoss, d_adv_loss, g_adv_loss, r1_penalty
from voiceface.methods.gan.model import (AUGMENTS, FaceCritics, Generator, GeneratorEMA, MinibatchStd, PixelNorm,
                                         dcgan_init, diff_augment)
from voiceface.methods.gan.evaluate import evaluate
from voiceface.methods.gan.train import load_run, make_step_fn, train, uses_stable_loss

from fakeworld import TINY

STABLE = ["model.gen_pixel_norm=true", "model.spectral_norm=true", "model.mbstd=true", "model.projection=true", "stable.loss=hinge",
          "stable.r1_gamma=1", "stable.r1_every=2", "stable.ema_beta=0.9", "stable.mismatch_weight=0.5",
          "stable.paired_batches=true", "stable.augment=translation,color,cutout", "stable.sample_every=3",
          "stable.sample_probes=3"]


def _critics(**kw) -> FaceCritics:
    return FaceCritics(4, (8, 8, 16, 16, 16), 16, **kw)


@pytest.mark.parametrize("on", [True, False])
def test_spectral_norm_present_only_when_on(on):
    c = _critics(spectral_norm=on, embed_dim=6 if on else 0)
    layers = [m for m in c.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m is not c.head_c]
    assert not torch.nn.utils.parametrize.is_parametrized(c.head_c)
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") == on for m in layers)
    if on:   # the normalised weight has spectral norm ~1 after enough power iterations
        lin = c.head_d
        for _ in range(50):
            lin(torch.randn(2, 16))
        assert torch.linalg.matrix_norm(lin.weight.detach(), ord=2) == pytest.approx(1.0, abs=0.05)


def test_pixel_norm_keeps_the_generator_signal_alive():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, 4) * 7
    torch.testing.assert_close(PixelNorm()(x).square().mean(1), torch.ones(3, 4, 4), rtol=1e-4, atol=1e-4)
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    plain = dcgan_init(Generator(8, (16, 8, 8, 8, 8)))
    normed = dcgan_init(Generator(8, (16, 8, 8, 8, 8), pixel_norm=True))
    assert not any(isinstance(m, PixelNorm) for m in plain.modules())
    assert plain(e).std() < 1e-4 < 1e-2 < normed(e).std()          # DCGAN init alone: a vanishing output


def test_r1_matches_naive_jacobian():
    torch.manual_seed(0)
    c = _critics(spectral_norm=True, embed_dim=6).eval()           # eval: no power iteration between calls
    real, e = torch.randn(3, 3, 64, 64), torch.randn(3, 6)
    jac = torch.autograd.functional.jacobian(lambda f: c.d_logit(f, e), real)      # (3, 3, 3, 64, 64)
    naive = torch.stack([jac[i, i].square().sum() for i in range(3)]).mean()
    assert naive > 0
    torch.testing.assert_close(r1_penalty(c, real, e), naive, rtol=1e-4, atol=1e-8)


def test_ema_update_rule():
    torch.manual_seed(0)
    g, g2 = Generator(8, (8, 8, 8, 8, 8)), Generator(8, (8, 8, 8, 8, 8))
    ema = GeneratorEMA(g, g2, beta=0.99)
    assert all(torch.equal(a, b) for a, b in zip(g.parameters(), g2.parameters()))
    before = [p.detach().clone() for p in g2.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    for step, want in ((0, 0.1), (1000, 0.99)):
        assert ema.rate(step) == pytest.approx(want)
    ema.update(1000)
    for old, new, src in zip(before, g2.parameters(), g.parameters()):
        torch.testing.assert_close(new, 0.99 * old + 0.01 * src)
    assert not any(p.requires_grad for p in g2.parameters())


def test_projection_output_shape_and_conditioning():
    torch.manual_seed(0)
    c = _critics(embed_dim=6)
    f, e = torch.randn(5, 3, 64, 64), torch.randn(5, 6)
    out = c.d_logit(f, e)
    assert out.shape == (5,)
    assert not torch.allclose(out, c.d_logit(f, -e))                # the voice changes the verdict
    h = c.trunk_d(f)
    torch.testing.assert_close(out - c.d_logit(f), (c.proj(e) * h).sum(1))   # e=None: unconditional part only
    assert any(p is q for p in c.proj.parameters() for q in c.d_parameters())
    assert _critics().proj is None


def test_minibatch_std_shape_and_value():
    x = torch.randn(8, 5, 3, 3)
    y = MinibatchStd(4)(x)
    assert y.shape == (8, 6, 3, 3)
    torch.testing.assert_close(y[:, :5], x)
    groups = x.reshape(4, 2, 5, 3, 3)                                # group of sample i: i % 2
    want = groups.std(0, unbiased=False).flatten(1).mean(1)          # (2,)
    torch.testing.assert_close(y[:, 5, 0, 0], want.repeat(4), atol=1e-4, rtol=1e-4)
    assert MinibatchStd(4)(torch.ones(6, 2)).shape == (6, 3)       # group 3 divides 6; (B, C) input
    assert MinibatchStd(4)(torch.ones(6, 2))[:, 2].max() < 1e-3    # identical samples: no spread


@pytest.mark.parametrize("policy", [("translation", "color", "cutout"), ("blur",), ("noise",), AUGMENTS])
def test_augmentation_identical_on_real_and_fake_when_tiled(policy):
    torch.manual_seed(0)
    real = torch.randn(4, 3, 64, 64)
    fake = real.clone().requires_grad_(True)
    y = diff_augment(torch.cat([real, fake]), policy, torch.Generator().manual_seed(1), tile=2)
    torch.testing.assert_close(y[:4], y[4:])
    assert not torch.allclose(y[:4], real)                           # it does transform
    y2 = diff_augment(torch.cat([real, real]), policy, torch.Generator().manual_seed(1), tile=1)
    assert not torch.allclose(y2[:4], y2[4:])                        # untiled: each sample its own transform
    y[4:].sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0       # differentiable
    again = diff_augment(torch.cat([real, real]), policy, torch.Generator().manual_seed(1), tile=2)
    torch.testing.assert_close(again, y.detach())                    # reproducible from the generator


def test_losses():
    r, f = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    assert d_adv_loss("hinge", r, f)[0].item() == pytest.approx(0.5)
    assert d_adv_loss("hinge", r, f)[1].item() == pytest.approx(0.75)
    torch.testing.assert_close(d_adv_loss("nonsat", r, f)[0], torch.nn.functional.binary_cross_entropy_with_logits(
        r, torch.ones(2)))
    assert g_adv_loss("hinge", f).item() == pytest.approx(0.75)
    with pytest.raises(ValueError):
        d_adv_loss("wgan", r, f)


def test_stable_switches_round_trip_through_yaml(tmp_path):
    cfg = cfglib.load_config(GANConfig, None, STABLE)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfglib.to_dict(cfg)))
    assert cfglib.load_config(GANConfig, path) == cfg
    assert cfg.model.projection and cfg.stable.augment == "translation,color,cutout"
    assert uses_stable_loss(cfg) and uses_stable_loss(PRESETS["cpu"])
    assert not uses_stable_loss(PRESETS["thesis"]) and PRESETS["thesis"].stable == StableConfig()
    assert not uses_stable_loss(dataclasses.replace(GANConfig(), stable=StableConfig(sample_every=5)))


def test_stable_phases_update_their_networks():
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8)), _critics(spectral_norm=True, mbstd_group=2, embed_dim=6)
    opts = {k: torch.optim.Adam(p, lr=1e-2) for k, p in
            (("g", g.parameters()), ("d", c.d_parameters()), ("c", c.c_parameters()))}
    s = StableConfig(loss="hinge", r1_gamma=1.0, r1_every=2, mismatch_weight=0.5, augment="translation,color")
    loss = StableGANLoss(g, c, opts, s)
    e = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    ids = torch.tensor([0, 1, 2, 3])
    out = loss.step(e, ids, torch.rand(4, 3, 64, 64) * 2 - 1, ids, e, 2, torch.Generator().manual_seed(0))
    assert {"loss/d_real", "loss/d_fake", "loss/d_mismatch", "loss/r1", "loss/c_real", "loss/g_d"} <= set(out)
    out = loss.step(e, ids, torch.rand(4, 3, 64, 64) * 2 - 1, ids, e, 3, torch.Generator().manual_seed(0))
    assert "loss/r1" not in out                                        # lazy: only every r1_every steps


def test_stable_tiny_run_samples_ema_and_resumes(gan_world, tmp_path):
    full = train(gan_world, tmp_path / "full", overrides=TINY + STABLE, seed=0, progress=False)
    assert sorted(p.name for p in (full / "samples").glob("*.png")) == ["step_000003.png", "step_000006.png"]
    ckpt = load_checkpoint(full / "checkpoint.pt")
    assert ckpt["extra"]["generate_with"] == "generator_ema" and "generator_ema" in ckpt["models"]
    model = load_run(full)
    results = evaluate(full)                                       # evaluation runs on a stable (projection) run
    assert 0 <= results["gen_gender_acc"] <= 1 and 0 <= results["d_speech_mean"] <= 1
    for k, v in model.generator.state_dict().items():
        torch.testing.assert_close(v, ckpt["models"]["generator_ema"][k], rtol=0, atol=0)
    killed = tmp_path / "killed"
    train(gan_world, killed, overrides=TINY + STABLE, seed=0, progress=False, stop_after=4)
    train(gan_world, killed, overrides=TINY + STABLE, seed=0, progress=False)
    b = load_checkpoint(killed / "checkpoint.pt")
    for name in ("generator", "generator_ema", "critics"):
        for k, v in ckpt["models"][name].items():
            torch.testing.assert_close(b["models"][name][k], v, rtol=0, atol=0, msg=f"{name}.{k}")


def test_upsampling_generator_has_no_transposed_strides_and_bounded_output():
    torch.manual_seed(0)
    g = dcgan_init(Generator(8, (16, 8, 8, 8, 8), pixel_norm=True, upsample=True))
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_(True)
    f = g(e)
    assert f.shape == (4, 3, 64, 64) and f.abs().max() < 1.0               # tanh output
    strided = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d) and m.stride != (1, 1)]
    ups = [m for m in g.modules() if isinstance(m, torch.nn.Upsample)]
    assert not strided and len(ups) == 4
    f.square().sum().backward()
    assert e.grad.abs().sum() > 0 and f.std() > 1e-3                        # signal and gradient reach the input
    assert PRESETS["cpu"].model.gen_upsample and not PRESETS["thesis"].model.gen_upsample


def test_recon_term_pulls_the_generator_to_its_paired_faces():
    """recon_weight: G's step adds mean |F_g(e_j) - f_j| (paired batches only); with only that term (adversarial and
    identity terms weighted away by a zero-lr critic and c_weight 0) 40 steps shrink the pixel error."""
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8), upsample=True), _critics(spectral_norm=True, embed_dim=6)
    opts = {"g": torch.optim.Adam(g.parameters(), lr=1e-2), "d": torch.optim.Adam(c.d_parameters(), lr=0.0),
            "c": torch.optim.Adam(c.c_parameters(), lr=0.0)}
    e = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    ids = torch.tensor([0, 1, 2, 3])
    real = (torch.rand(4, 3, 1, 1) * 1.6 - 0.8).expand(4, 3, 64, 64)     # one flat colour per identity
    on = StableGANLoss(g, c, opts, StableConfig(paired_batches=True, recon_weight=100.0, c_weight=0.0))
    first = on.step(e, ids, real, ids, e, 1, torch.Generator().manual_seed(0))["loss/g_recon"]
    for step in range(2, 40):
        last = on.step(e, ids, real, ids, e, step, torch.Generator().manual_seed(0))["loss/g_recon"]
    assert last < 0.6 * first
    off = StableGANLoss(g, c, opts, StableConfig(paired_batches=False, recon_weight=1.0))
    assert "loss/g_recon" not in off.step(e, ids, real, ids, e, 1, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="recon_weight"):
        make_step_fn(dataclasses.replace(GANConfig(), stable=StableConfig(recon_weight=1.0)), None, g, c, opts, None,
                     0, torch.device("cpu"))


@pytest.mark.parametrize("pool", [1, 2, 4])
def test_pooled_recon_term_compares_block_means(pool):
    """recon_pool k: the pull is the mean |block mean of F_g(e_j) - block mean of f_j| over k x k blocks (a naive
    reshape here); a pixel checkerboard in the real face is invisible to it for any even k."""
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8), upsample=True), _critics(spectral_norm=True, embed_dim=6)
    opts = {k: torch.optim.Adam(p, lr=0.0) for k, p in
            (("g", g.parameters()), ("d", c.d_parameters()), ("c", c.c_parameters()))}
    e = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    ids = torch.tensor([0, 1, 2, 3])
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 - 0.5        # (64, 64), +-0.5
    real = checker.expand(4, 3, 64, 64)
    with torch.no_grad():
        fake = g(e)

    def blocks(x):
        return x.reshape(4, 3, 64 // pool, pool, 64 // pool, pool).mean(dim=(3, 5))

    loss = StableGANLoss(g, c, opts, StableConfig(paired_batches=True, recon_weight=1.0, recon_pool=pool))
    logged = loss.step(e, ids, real, ids, e, 1, torch.Generator().manual_seed(0))["loss/g_recon"]
    assert logged == pytest.approx((blocks(fake) - blocks(real)).abs().mean().item(), rel=1e-5)
    if pool > 1:
        assert logged == pytest.approx(blocks(fake).abs().mean().item(), rel=1e-5)


def test_lr_decay_schedule_is_linear_to_zero_and_off_by_default():
    """``lr_decay_start`` 0.5 of 100 steps: lr constant to step 50, then linear towards 0 at step 100; 1.0 = constant,
    and the step function sets every optimiser's lr from the step alone (a resumed run gets the same lr)."""
    from voiceface.methods.gan.train import lr_factor, set_lr
    cfg = cfglib.replace(GANConfig(), {"steps": 100, "lr_decay_start": 0.5})
    f = [lr_factor(cfg, s) for s in range(100)]
    assert f[:51] == [1.0] * 51 and f[75] == pytest.approx(0.5) and 0 < f[99] < 0.05
    assert all(a > b for a, b in zip(f[50:], f[51:]))
    assert {lr_factor(GANConfig(steps=100), s) for s in range(100)} == {1.0}
    opts = {k: torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0) for k in "gdc"}
    set_lr(opts, 0.25)
    assert {g["lr"] for o in opts.values() for g in o.param_groups} == {0.25}


def test_gender_term_teaches_the_head_and_pulls_the_generator_to_the_voice_gender():
    """stable.gender_weight: the C step trains a gender head on real faces (labels id_gender[real_id]), the G step
    adds its cross-entropy on G's faces with the voice's gender; unknown genders (-1) are left out; off = no head."""
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8), upsample=True), _critics(embed_dim=6, gender_head=True)
    opts = {"g": torch.optim.Adam(g.parameters(), lr=1e-2), "d": torch.optim.Adam(c.d_parameters(), lr=0.0),
            "c": torch.optim.Adam(c.c_parameters(), lr=1e-2)}
    assert {id(p) for p in c.head_g.parameters()} <= {id(p) for p in c.c_parameters()}
    id_gender = torch.tensor([1.0, 0.0, 1.0, -1.0])
    e = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    ids = torch.tensor([0, 1, 2, 3])
    real = torch.cat([torch.full((1, 3, 64, 64), v) for v in (0.8, -0.8, 0.8, 0.0)])    # male bright, female dark
    loss = StableGANLoss(g, c, opts, StableConfig(paired_batches=True, gender_weight=5.0, c_weight=0.0), None,
                         id_gender)
    outs = [loss.step(e, ids, real, ids, e, s, torch.Generator().manual_seed(0)) for s in range(1, 60)]
    assert outs[-1]["acc/c_gender"] == 1.0 and outs[-1]["loss/c_gender"] < 0.5 * outs[0]["loss/c_gender"]
    assert outs[-1]["loss/g_gender"] < 0.5 * outs[0]["loss/g_gender"]
    assert torch.isfinite(torch.tensor([o["loss/g_gender"] for o in outs])).all()
    with torch.no_grad():
        brightness = g(e).mean(dim=(1, 2, 3))
    assert brightness[[0, 2]].min() > brightness[1]                  # the male voices' faces are the brighter ones
    assert _critics().head_g is None
    with pytest.raises(ValueError, match="gender"):
        StableGANLoss(g, c, opts, StableConfig(gender_weight=1.0))


def test_gender_switches_train_end_to_end_and_stay_off_in_the_presets(gan_world, tmp_path):
    """encoder.gender_weight adds a gender head to F_e's pretraining (logged, stored), stable.gender_weight the
    critics' gender head (stored, loadable); both default to 0 and the thesis preset stays Algorithm 1."""
    out = train(gan_world, tmp_path / "g", overrides=TINY + STABLE + ["stable.gender_weight=1",
                                                                     "encoder.gender_weight=1",
                                                                     "stable.gender_augment=translation,cutout",
                                                                     "model.gender_projection=true",
                                                                     "stable.gender_mismatch_weight=0.25"],
                seed=0, progress=False)
    enc = load_checkpoint(out / "encoder" / "checkpoint.pt")
    assert "gender_head" in enc["models"]
    stored = load_checkpoint(out / "checkpoint.pt")["models"]["critics"]
    assert any(k.startswith("head_g.") for k in stored) and any(k.startswith("proj_g.") for k in stored)
    assert load_run(out).critics.head_g is not None and load_run(out).critics.proj_g is not None
    assert GANConfig().stable.gender_weight == 0 and GANConfig().encoder.gender_weight == 0
    cpu = PRESETS["cpu"]                                  # issue 13's switches: measured, not adopted
    assert not cpu.stable.gender_augment and not cpu.model.gender_projection and not cpu.stable.gender_mismatch_weight
    assert PRESETS["thesis"].stable == StableConfig() and PRESETS["thesis"].encoder.gender_weight == 0


def test_c_smoothing_is_label_smoothing_of_the_c_step():
    """stable.c_smoothing: F_c's loss on real faces is the label-smoothed cross-entropy (0 = Algorithm 1's)."""
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8), upsample=True), _critics()
    opts = {k: torch.optim.Adam(p, lr=0.0) for k, p in
            (("g", g.parameters()), ("d", c.d_parameters()), ("c", c.c_parameters()))}
    real, ids = torch.rand(4, 3, 64, 64) * 2 - 1, torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        logits = c(real, "c") * 1
    for smooth in (0.0, 0.3):
        out = StableGANLoss(g, c, opts, StableConfig(c_smoothing=smooth)).c_step(real, ids, None)
        want = torch.nn.functional.cross_entropy(logits, ids, label_smoothing=smooth).item()
        assert out["loss/c_real"] == pytest.approx(want, rel=1e-5)
    assert GANConfig().stable.c_smoothing == 0.0


def _gender_setup(**critics_kw):
    torch.manual_seed(0)
    g, c = Generator(6, (16, 8, 8, 8, 8), upsample=True), _critics(embed_dim=6, **critics_kw)
    e = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    real = torch.cat([torch.full((1, 3, 64, 64), v) for v in (0.8, -0.8, 0.8, -0.8)])   # male bright, female dark
    return g, c, e, torch.tensor([0, 1, 2, 3]), real, torch.tensor([1.0, 0.0, 1.0, 0.0])


def test_gender_augment_feeds_the_gender_head_augmented_faces_only():
    """stable.gender_augment: the gender head's loss (C step on real faces, G step on G's faces) is taken on
    diff_augment of its input (drawn from the step's generator), the identity loss on the plain input."""
    g, c, e, ids, real, id_gender = _gender_setup(gender_head=True)
    opts = {k: torch.optim.Adam(p, lr=0.0) for k, p in
            (("g", g.parameters()), ("d", c.d_parameters()), ("c", c.c_parameters()))}
    policy = ("color", "cutout")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        fake = g(e)
        want_c = bce(c(diff_augment(real, policy, torch.Generator().manual_seed(0)), "cg")[1], id_gender).item()
        want_g = bce(c(diff_augment(fake, policy, torch.Generator().manual_seed(0)), "cg")[1], id_gender).item()
        plain_c = bce(c(real, "cg")[1], id_gender).item()
        want_id = torch.nn.functional.cross_entropy(c(real, "c"), ids).item()
    on = StableGANLoss(g, c, opts, StableConfig(gender_weight=1.0, gender_augment="color,cutout"), None, id_gender)
    out_c = on.c_step(real, ids, torch.Generator().manual_seed(0))
    out_g = on.g_step(g(e), e, ids, torch.Generator().manual_seed(0))
    assert out_c["loss/c_gender"] == pytest.approx(want_c, rel=1e-5) and abs(want_c - plain_c) > 1e-4
    assert out_c["loss/c_real"] == pytest.approx(want_id, rel=1e-5)
    assert out_g["loss/g_gender"] == pytest.approx(want_g, rel=1e-5)
    with pytest.raises(ConfigError, match="gender_augment"):
        make_step_fn(cfglib.replace(GANConfig(), {"stable": {"gender_augment": "color"}}), None, g, c, opts, None,
                     0, torch.device("cpu"))


def test_gender_projection_d_separates_real_faces_by_their_gender_sign():
    """model.gender_projection adds s * <w, h> to D's logit (s = +1 male / -1 female / 0 or None: no term; w in the
    D step's parameters); with gender_mismatch_weight, 40 D steps on real faces teach D to score a real face higher
    with its own gender than with the opposite one."""
    g, c, e, ids, real, id_gender = _gender_setup(gender_projection=True, spectral_norm=True)
    assert {id(p) for p in c.proj_g.parameters()} <= {id(p) for p in c.d_parameters()}
    assert _critics(embed_dim=6).proj_g is None
    sign = 2 * id_gender - 1
    with torch.no_grad():                                          # eval: no power iteration between forwards
        h = c.eval().trunk_d(real)
        torch.testing.assert_close(c(real, "d", e, sign) - c(real, "d", e, -sign), 2 * sign * c.proj_g(h).squeeze(1))
        torch.testing.assert_close(c(real, "d", e, torch.zeros(4)), c(real, "d", e))
    c.train()
    opts = {"g": torch.optim.Adam(g.parameters(), lr=0.0), "d": torch.optim.Adam(c.d_parameters(), lr=1e-2),
            "c": torch.optim.Adam(c.c_parameters(), lr=0.0)}
    loss = StableGANLoss(g, c, opts, StableConfig(paired_batches=True, gender_mismatch_weight=1.0), None, id_gender)
    margin = []
    for step in range(40):
        with torch.no_grad():
            margin.append((c.d_logit(real, e, sign) - c.d_logit(real, e, -sign)).min().item())
        out = loss.d_step(real, g(e), e, e, ids, torch.Generator().manual_seed(step), ids)
    assert "loss/d_gender_mismatch" in out and margin[-1] > 0.5 and margin[-1] > margin[0] + 0.5
    with pytest.raises(ConfigError, match="gender_mismatch_weight"):
        make_step_fn(cfglib.replace(GANConfig(), {"stable": {"gender_mismatch_weight": 1.0}}), None, g, c, opts,
                     None, 0, torch.device("cpu"))
