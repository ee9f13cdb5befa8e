"""Authors' and Learnable PINs splits; readers for the published VoxCeleb1 evaluation lists (real files)."""
from pathlib import PurePosixPath

import numpy as np
import pytest

from voiceface.data import adapters, lists, splits
from voiceface.data.manifest import Item, Manifest
from voiceface.errors import InputError


@pytest.fixture(scope="module")
def people(voxceleb1_samples):
    return adapters.read_meta(voxceleb1_samples / "vox1_meta.csv")


def _manifest(names):
    return Manifest([Item(path=f"/x/{n}/{k}.wav", modality="voice", identity=n) for n in names for k in range(2)])


def test_authors_split_rule():
    assert [splits.authors_split(n) for n in ("Aamir_Khan", "bob", "Cher", "Eoin_Macken", "Freddie", "Zoe",
                                              "id10001", "4Minute", "Émile", "")] == \
        ["val", "val", "test", "test", "train", "train", "train", "train", "train", "train"]


def test_authors_split_counts_on_real_meta(people):
    m = _manifest([p.identity for p in people])
    out = splits.apply_split(m, "authors")
    assert len(out) == len(m) and all(a.path == b.path for a, b in zip(out, m))
    counts = {s: len(out.select(split=s).identities()) for s in ("train", "val", "test")}
    # consistent with thesis Table 2.1 (924 / 112 / 189 of the 1,225 VGGFace-shared identities) once 26 are removed
    assert counts == {"train": 942, "val": 116, "test": 193}
    assert m[0].split == ""                                  # the input manifest is unchanged


def test_pins_split_on_real_file(eval_lists, people):
    table = splits.read_pins_split(eval_lists)
    assert len(table) == 1251
    assert set(table) == {p.identity for p in people}           # the split covers exactly the VoxCeleb1 names
    values = list(table.values())
    counts = tuple(values.count(s) for s in ("train", "val", "test", "seen"))
    assert counts == (901, 100, 250, 0)
    out = splits.apply_split(_manifest(["A.J._Buckley", "A.R._Rahman", "Nobody_Known"]), "pins",
                             pins_file=eval_lists / "splits" / "identity_splits.txt")
    assert [it.split for it in out] == ["train", "train", "test", "test", "", ""]


def test_split_errors(tmp_path):
    with pytest.raises(InputError, match="unknown split"):
        splits.apply_split(_manifest(["a"]), "random")
    with pytest.raises(InputError, match="needs the identity_splits"):
        splits.apply_split(_manifest(["a"]), "pins")
    (tmp_path / "s.txt").write_text("A 1\nB 7\n")
    with pytest.raises(InputError, match="line 2"):
        splits.read_pins_split(tmp_path / "s.txt")


def test_verification_lists_real(eval_lists):
    files = lists.list_files(eval_lists)
    assert {"verif_random_seenheard", "verif_random_unseenunheard", "verif_G_unseenunheard", "splits"} <= set(files)
    v = lists.read_verification_list(files["verif_random_unseenunheard"])
    assert len(v) == 30496 and v.labels.dtype == np.int8
    assert v.labels.mean() == 0.5
    # labels agree with the speaker ids and with the names in the paths
    assert np.array_equal(v.labels == 1, v.voice_speaker == v.face_speaker)
    assert np.array_equal(v.labels == 1, v.voice_identities == v.face_identities)
    assert v.voice_paths[0] == "A.R._Rahman/gaQqIoV_aLY_0000001.wav"
    # unseen-unheard identities are the PINs test identities
    pins = splits.read_pins_split(eval_lists)
    assert {pins[n] for n in set(v.voice_identities) | set(v.face_identities)} == {"test"}
    seen = lists.read_verification_list(files["verif_random_seenheard"])
    assert len(seen) == 18020 and {pins[n] for n in set(seen.voice_identities)} == {"train"}


def test_matching_lists_real(eval_lists, people):
    name_of = {p.vox_id: p.identity for p in people}
    gender = {p.identity: p.gender for p in people}
    for direction in ("v2f", "f2v"):
        for group in ("U", "G"):
            m = lists.read_matching_list(eval_lists / "matching" / f"matching_{direction}_{group}.csv")
            assert len(m) == 10000 and m.direction == direction and m.stratified == (group == "G")
            voices = m.identities("probes") if direction == "v2f" else m.identities("trues")
            faces_true = m.identities("trues") if direction == "v2f" else m.identities("probes")
            voice_names = np.array([name_of[v] for v in voices])
            assert np.array_equal(voice_names, faces_true)            # the true item is the probe's person
            imp = m.identities("imposters")
            imp_names = imp if direction == "v2f" else np.array([name_of[v] for v in imp])
            assert not np.any(imp_names == faces_true)
            same_gender = np.mean([gender[a] == gender[b] for a, b in zip(faces_true, imp_names)])
            if group == "G":
                assert same_gender == 1.0
            else:
                assert 0.3 < same_gender < 0.7


def test_list_errors(tmp_path):
    (tmp_path / "v.txt").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="header"):
        lists.read_verification_list(tmp_path / "v.txt")
    (tmp_path / "matching_v2f_U.csv").write_text("a b c\nd e\n")
    with pytest.raises(InputError, match="line 2"):
        lists.read_matching_list(tmp_path / "matching_v2f_U.csv")
    (tmp_path / "other.csv").write_text("a b c\n")
    with pytest.raises(InputError, match="direction"):
        lists.read_matching_list(tmp_path / "other.csv")
    assert lists.read_matching_list(tmp_path / "other.csv", direction="f2v").direction == "f2v"


def test_map_paths_onto_media_root(tmp_path, eval_lists, people):
    v = lists.read_verification_list(eval_lists / "veriflist" / "veriflist_test_random_unseenunheard.txt")
    m = lists.read_matching_list(eval_lists / "matching" / "matching_v2f_U.csv")
    name_to_id = {p.identity: p.vox_id for p in people}
    media = tmp_path / "media"
    # the user has: one voice in the VoxCeleb1 release layout, one face without the '1.6' folder, one as .png crop,
    # and one matching voice as a precomputed feature file under wav/
    targets = ["wav/id10002/gaQqIoV_aLY/00001.wav",
               m.trues[0].replace("/1.6/", "/"),
               str(PurePosixPath(v.face_paths[0]).with_suffix(".png")),
               "wav/" + str(PurePosixPath(m.probes[1]).with_suffix(".npy"))]
    for t in targets:
        (media / t).parent.mkdir(parents=True, exist_ok=True)
        (media / t).write_bytes(b"")
    got = lists.map_paths(v.voice_paths[:4], media, name_to_id=name_to_id)
    assert got.found == 1 and got.exists[0] and got.paths[0] == str(media / targets[0]) and got.paths[1] == ""
    assert lists.map_paths(v.voice_paths[:4], media).found == 0            # needs the name -> id table
    faces = lists.map_paths(np.concatenate([m.trues[:1], v.face_paths[:1]]), media, extensions=(".png",))
    assert faces.found == 2 and faces.fraction == 1.0
    probes = lists.map_paths(m.probes[:3], media, extensions=(".npy",))
    assert probes.exists.tolist() == [False, True, False]
    with pytest.raises(InputError, match="media folder not found"):
        lists.map_paths([], tmp_path / "none")


def _vox_like_items(with_session: bool):
    from voiceface.data.manifest import Item

    items = []
    for i in range(30):
        ident = f"id1{i:04d}"
        for v in range(6):
            video = f"vid{i}_{v}"
            for seg in range(1, 6):
                items.append(Item(f"/data/wav/{ident}/{video}/{seg:05d}.wav", "voice", ident,
                                  session=video if with_session else ""))
            items.append(Item(f"/data/faces/{ident}/{video}/0000{v}.png", "face", ident,
                              session=video if with_session else ""))
    return items


@pytest.mark.parametrize("with_session", [True, False])
def test_dimnet_seen_heard_holdout_is_by_whole_video(with_session):
    from voiceface.methods.dimnet.train import heldout_mask

    items = _vox_like_items(with_session)
    mask = heldout_mask(items, 0.2)
    video = np.array([f"{it.identity}/{it.path.split('/')[-2]}" for it in items])
    held, kept = set(video[mask]), set(video[~mask])
    assert held and not held & kept                       # no held-out recording shares its video with training
    assert 0.1 < len(held) / len(set(video)) < 0.3
    for ident in {it.identity for it in items}:           # every identity keeps training items of both modalities
        for modality in ("voice", "face"):
            assert any(not m and it.identity == ident and it.modality == modality for it, m in zip(items, mask))
    np.testing.assert_array_equal(heldout_mask(items[::-1], 0.2)[::-1], mask)   # order-independent
