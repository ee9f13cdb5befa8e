"""Similarity alignment to the fixed template (voiceface.face.align)."""
import numpy as np
import pytest
import torch

from voiceface.face import align


def _rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def test_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(7, 2)) * 30 + 50
    m_true = np.hstack([1.7 * _rot(0.3), [[3.0], [-4.0]]])
    dst = align.apply_transform(m_true, src)
    np.testing.assert_allclose(align.similarity_from_points(src, dst), m_true, atol=1e-10)


def test_similarity_excludes_reflection_and_is_least_squares():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(10, 2))
    dst = src * [-1.0, 1.0]                      # a mirror image: best similarity is no reflection
    m = align.similarity_from_points(src, dst)
    assert np.linalg.det(m[:, :2]) > 0
    m_true = np.hstack([0.5 * _rot(-1.0), [[1.0], [2.0]]])
    noisy = align.apply_transform(m_true, src) + rng.normal(size=src.shape) * 0.01
    m = align.similarity_from_points(src, noisy)
    base = np.abs(align.apply_transform(m, src) - noisy).sum()
    err = ((align.apply_transform(m, src) - noisy) ** 2).sum()
    for k in range(4):                            # perturbing any similarity parameter cannot lower the error
        for delta in (1e-3, -1e-3):
            a, b, tx, ty = m[0, 0], m[1, 0], m[0, 2], m[1, 2]
            params = np.array([a, b, tx, ty])
            params[k] += delta
            a, b, tx, ty = params
            p = np.array([[a, -b, tx], [b, a, ty]])
            assert ((align.apply_transform(p, src) - noisy) ** 2).sum() > err
    assert base < 0.2
    with pytest.raises(ValueError):
        align.similarity_from_points(np.ones((5, 2)), src[:5])


def test_template_scales_with_size_and_is_symmetric():
    t128, t64 = align.template(128), align.template(64)
    np.testing.assert_allclose((t128 + 0.5) / 2 - 0.5, t64)
    assert align.TEMPLATE_5.shape == (5, 2) and np.all((align.TEMPLATE_5 > 0) & (align.TEMPLATE_5 < 1))
    np.testing.assert_allclose(align.TEMPLATE_5[0, 0] + align.TEMPLATE_5[1, 0], 1.0)
    np.testing.assert_allclose(align.TEMPLATE_5[3, 0] + align.TEMPLATE_5[4, 0], 1.0)
    assert align.TEMPLATE_5[0, 1] < align.TEMPLATE_5[2, 1] < align.TEMPLATE_5[3, 1]


def test_points68_to_5():
    lm = np.zeros((68, 2))
    lm[36:42] = [10, 20]
    lm[42:48] = [30, 20]
    lm[36] = [8, 20]
    lm[30] = [20, 30]
    lm[48] = [12, 40]
    lm[54] = [28, 41]
    p = align.points68_to_5(lm)
    np.testing.assert_allclose(p, [[(8 + 50) / 6, 20], [30, 20], [20, 30], [12, 40], [28, 41]])
    assert align.points68_to_5(np.stack([lm, lm])).shape == (2, 5, 2)


def _blob_image(points, shape=(200, 180), sigma=2.0):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.zeros(shape)
    for x, y in points:
        img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [128, 64])
def test_align_image_puts_landmarks_on_template(size):
    # A grey image with a bright blob at each of the 5 points, rotated/scaled/shifted: after alignment each blob's
    # centroid sits on the template (to a fraction of a pixel).
    unit = align.TEMPLATE_5 * 100
    m = np.hstack([1.1 * _rot(0.25), [[40.0], [30.0]]])
    pts = align.apply_transform(m, unit)
    crop = align.align_image(_blob_image(pts, sigma=3.0), pts, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop[..., 0], crop[..., 2])          # grey replicated to RGB
    tmpl = align.template(size)
    ys, xs = np.mgrid[0:size, 0:size]
    w = crop[..., 0].astype(float)
    radius = 0.06 * size
    for tx, ty in tmpl:
        win = w * (((xs - tx) ** 2 + (ys - ty) ** 2) < radius ** 2)
        cx, cy = (win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()
        assert abs(cx - tx) < 0.35 and abs(cy - ty) < 0.35, (cx, cy, tx, ty)


def test_align_accepts_68_points_and_matches_5_point_result():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    lm68 = rng.uniform(20, 90, size=(68, 2))
    a = align.align_image(img, lm68, 64)
    b = align.align_image(img, align.points68_to_5(lm68), 64)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        align.align_image(img, lm68[:10], 64)


def test_to_tensor_scaling_and_roundtrip():
    crop = np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None].repeat(3, -1)
    t = align.to_tensor(crop)
    assert t.shape == (3, 16, 16) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t[0, 0, 1].item() == pytest.approx((1 - 127.5) / 127.5)
    assert t.max().item() == pytest.approx(1.0)
    assert np.array_equal(align.from_tensor(t), crop)


def test_warp_identity_and_outside_is_black():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    out = align.warp_affine(img, ident, 40)
    assert np.array_equal(out[:40], img[:40])
    shifted = align.warp_affine(img, np.array([[1.0, 0, 100], [0, 1.0, 0]]), 32)
    assert shifted.max() == 0


def test_template68_is_symmetric_and_consistent_with_template5():
    t = align.TEMPLATE_68
    assert t.shape == (68, 2)
    mirrored = np.stack([1 - t[align.MIRROR_68, 0], t[align.MIRROR_68, 1]], 1)
    np.testing.assert_allclose(mirrored, t, atol=1e-3)
    assert np.array_equal(align.MIRROR_68[align.MIRROR_68], np.arange(68))
    # the average face's 5 points lie near the 5-point template (within 3% of the crop)
    assert np.abs(align.points68_to_5(t) - align.TEMPLATE_5).max() < 0.03
    # whole face inside the crop: jaw and brows within (0, 1)
    assert t.min() > 0.15 and t.max() < 0.95
    np.testing.assert_allclose(align.template68(64), t * 64 - 0.5)


def test_flip_landmarks_matches_flipped_image_alignment():
    lm = align.template68(128) * 0.7 + [20.0, 10.0]
    flipped = align.flip_landmarks(lm, 200)
    np.testing.assert_allclose(align.flip_landmarks(flipped, 200), lm)
    # flipping a symmetric face's landmarks gives the mirror image of its points, same meaning per index
    assert flipped[36, 0] < flipped[45, 0]
    np.testing.assert_allclose(flipped[30, 0], 199 - lm[30, 0])
