"""CEST data: minibatches grouped by clip, the face-mask stand-in, and adapters on small fake trees in the real
layouts (VoxCeleb-style frame folders, 300W-LP / AFLW2000-3D .jpg + .mat, MICC .obj)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from voiceface.face.detect import Face
from voiceface.methods.cest.data import (HullSkinSegmenter, flip_frames, frame_folders, image_bank, load_sim_clips,
                                         read_300wlp, read_micc, sample_batch)


def test_batches_grouped_by_clip(clip_world):
    bank = load_sim_clips(clip_world, ("train",))
    assert bank.truth["albedo"].shape[0] == 4 and len(bank) == 16
    idx, part = sample_batch(bank, np.random.default_rng(0), 3, 2)
    assert idx.shape == (6,) and part.shape == (6, 1)
    for i in range(6):
        j = part[i, 0]
        assert j != i and bank.clip[idx[j]] == bank.clip[idx[i]]          # another frame of the same clip
    idx2, _ = sample_batch(bank, np.random.default_rng(0), 3, 2)
    assert (idx == idx2).all()                                             # deterministic from the seed
    _, full = sample_batch(bank, np.random.default_rng(0), 3, 2, objective="full")
    assert full.shape == (6, 2) and (full[:2] == [[0, 1], [0, 1]]).all()
    _, vid = sample_batch(bank, np.random.default_rng(0), 3, 2, scope="video")
    assert vid.shape == (6, 1)


def test_flip_frames_mirrors_images_masks_and_landmarks(clip_world):
    import torch

    bank = load_sim_clips(clip_world, ("train",))
    batch = bank.tensors(np.arange(6))
    flip = torch.tensor([True, False, True, False, True, True])
    out = flip_frames(batch, flip)
    assert torch.equal(out["images"][1], batch["images"][1]) and torch.equal(out["landmarks"][3], batch["landmarks"][3])
    assert torch.equal(out["images"][0], batch["images"][0].flip(-1))
    back = flip_frames(out, flip)                                          # an involution
    assert all(torch.allclose(back[k], batch[k]) for k in ("images", "masks", "landmarks"))
    lm, m = out["landmarks"][flip], out["masks"][flip][:, 0]
    ij = lm.floor().long().clamp(0, bank.size - 1)
    assert m[torch.arange(len(lm))[:, None], ij[..., 1], ij[..., 0]].float().mean() > 0.9   # on the mirrored face
    assert (lm[:, 36, 0] < lm[:, 45, 0]).all() and (lm[:, 0, 0] < lm[:, 16, 0]).all()   # image-left stays left


def test_flip_batches_mirror_whole_clips(clip_world):
    from voiceface.methods.cest.config import CESTConfig, DataConfig
    from voiceface.methods.cest.train import Batches

    bank = load_sim_clips(clip_world, ("train",))
    cfg = CESTConfig(data=DataConfig(clips_per_batch=3, frames_per_clip=2))
    plain = Batches(bank, cfg)(5)
    flip_cfg = CESTConfig(data=DataConfig(clips_per_batch=3, frames_per_clip=2, flip=True))
    flipped = Batches(bank, flip_cfg)(5)
    assert np.array_equal(plain["partners"], flipped["partners"])
    same = [bool((plain["images"][i] == flipped["images"][i]).all()) for i in range(6)]
    mirrored = [bool((plain["images"][i].flip(-1) == flipped["images"][i]).all()) for i in range(6)]
    assert all(a or b for a, b in zip(same, mirrored)) and same[0::2] == same[1::2]   # whole clips
    changed = np.concatenate([(Batches(bank, cfg)(s)["images"] != Batches(bank, flip_cfg)(s)["images"]).flatten(1)
                              .any(1).numpy()[0::2] for s in range(8)])         # per clip drawn, 24 clips
    assert 6 <= changed.sum() <= 18                                        # about half of them mirrored


def test_segmenter_is_hull_and_skin(clip_world):
    bank = load_sim_clips(clip_world, ("train",))
    m = HullSkinSegmenter()(bank.frames[:4], bank.landmarks[:4])
    true = bank.masks[:4]
    inter = (m & true).sum() / m.sum()
    assert m.any() and inter > 0.9                # the stand-in mask lies on the face
    grey = np.repeat(bank.frames[:1].mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    assert HullSkinSegmenter()(grey, bank.landmarks[:1]).sum() > 0.5 * m[0].sum()


class FakeDetector:
    """Stands in for dlib: returns known landmarks, or no face for files named 'noface*'."""

    def __init__(self, landmarks):
        self.landmarks = landmarks
        self.calls = 0

    def find(self, image, path=None):
        from voiceface.errors import InputError
        self.calls += 1
        if str(path).split("/")[-1].startswith("noface"):
            raise InputError(path, "no face found")
        return Face(box=(0, 0, 1, 1), score=1.0, landmarks=self.landmarks)


def test_frame_folders_adapter(clip_world, tmp_path):
    bank = load_sim_clips(clip_world, ("train",))
    root = tmp_path / "vox"
    for pid, vid in (("id1", "vidA"), ("id1", "vidB"), ("id2", "vidC")):
        d = root / pid / vid
        d.mkdir(parents=True)
        for k in range(3):
            Image.fromarray(bank.frames[k]).save(d / f"{k:05d}.jpg")
        Image.fromarray(bank.frames[0]).save(d / "noface.jpg")
    det = FakeDetector(bank.landmarks[0].astype(np.float64) - 0.5)
    vb = frame_folders(root, 64, detector=det)
    assert len(vb) == 9 and len(vb.clip_names) == 3 and vb.person_names == ["id1", "id2"]
    assert vb.frames.shape == (9, 64, 64, 3) and vb.masks.any()
    assert det.calls == 12
    frame_folders(root, 64, detector=det)                                  # cached: no new detection
    assert det.calls == 12


def test_300wlp_adapter(clip_world, tmp_path):
    import scipy.io

    bank = load_sim_clips(clip_world, ("train",))
    for k, key in enumerate(("pt3d_68", "pt2d")):
        Image.fromarray(bank.frames[k]).save(tmp_path / f"img{k}.jpg")
        lm = bank.landmarks[k].astype(np.float64) - 0.5
        arr = np.concatenate([lm.T, np.zeros((1, 68))]) if key == "pt3d_68" else lm.T
        pose = np.array([[0.1, -0.2, 0.05, 1, 2, 3, 0.001]])
        scipy.io.savemat(tmp_path / f"img{k}.mat", {key: arr, "Pose_Para": pose})
    Image.fromarray(bank.frames[2]).save(tmp_path / "nomat.jpg")
    scipy.io.savemat(tmp_path / "bad.mat", {"x": 1})
    Image.fromarray(bank.frames[2]).save(tmp_path / "bad.jpg")
    recs = read_300wlp(tmp_path)
    assert [r["image"].name for r in recs] == ["img0.jpg", "img1.jpg"]
    assert recs[0]["landmarks3d"].shape == (68, 3) and recs[1]["landmarks3d"] is None
    assert np.allclose(recs[0]["pose"], [0.1, -0.2, 0.05])
    ib = image_bank(recs, 64)
    assert ib.frames.shape == (2, 64, 64, 3) and len(np.unique(ib.clip)) == 2


def test_micc_adapter(tmp_path):
    from voiceface.face3d import builtin_model
    from voiceface.face3d.meshio import save_mesh
    from voiceface.metrics.shape import crop_mask, nme, outer_interocular

    m = builtin_model()
    verts = m.mean.numpy()
    (tmp_path / "subject_01").mkdir()
    save_mesh(tmp_path / "subject_01" / "scan.obj", verts * 1.0, m.triangles.numpy())
    (tmp_path / "broken.obj").write_text("not a mesh")
    scans = read_micc(tmp_path)
    assert [s["identity"] for s in scans][:1] == ["subject_01"]
    s = scans[-1] if scans[-1]["identity"] == "subject_01" else scans[0]
    lm = verts[m.landmarks68.numpy()]
    crop = crop_mask(s["vertices"], lm[30], 95.0)
    # a rigidly moved copy of the scan scores ~0 after ICP; a different face does not
    th = 0.2
    rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    moved = verts @ rot.T + 5.0
    li = m.landmarks68.numpy()
    assert nme(moved, s["vertices"], outer_interocular(lm), true_mask=crop, init_points=(moved[li], lm)) < 0.05
    other = m.shape(np.full((1, m.num_identity), 2.0))[0].numpy()
    assert nme(other, s["vertices"], outer_interocular(lm), true_mask=crop, init_points=(other[li], lm)) > 0.3


def test_partner_frames_pair_every_frame_with_another_person_of_its_group():
    from voiceface.methods.cest.evaluate import partner_frames

    person = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4])
    group = np.array(["m", "m", "f", "f", "m"])[person]                 # people 0, 1, 4 male; 2, 3 female
    for seed in range(5):
        partners = partner_frames(person, np.random.default_rng(seed), group)
        assert (person[partners] != person).all() and (group[partners] == group).all()
        for p in range(5):                                               # one partner person, distinct frames
            mine = partners[person == p]
            assert len(set(person[mine])) == 1
            assert len(set(mine)) == min(len(mine), int((person == person[mine[0]]).sum()))
