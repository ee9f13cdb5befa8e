"""``voiceface prepare voxceleb`` on trees laid out like the real corpora (VoxCeleb1 ``wav/idXXXXX/VIDEO/NNNNN.wav``
+ ``vox1_meta.csv``, VGGFace ``NAME/NNNNNNNN.jpg``), with the real names and ids of vox1_meta.csv, checked against
that file, the published Learnable PINs split file and the thesis's Table 2.1 identity counts."""
import csv
import shutil

import numpy as np
import pytest
import soundfile
from PIL import Image

from voiceface.cli import main
from voiceface.data import read_manifest
from voiceface.data.loaders import face_path
from voiceface.data.prepare import prepare_corpus, split_counts

PINS = {"1": "train", "2": "val", "4": "test"}


def _meta(samples):
    with open(samples / "vox1_meta.csv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return [dict(zip(("vox_id", "name", "gender", "nationality", "set"), (c.strip() for c in r))) for r in rows[1:]]


def _wav(path, seconds=0.05, src=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if src is not None:
        shutil.copy(src, path)
    else:
        soundfile.write(path, np.zeros(int(16000 * seconds), np.int16), 16000, subtype="PCM_16")


def _jpg(path, image=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    (image if image is not None else Image.new("RGB", (40, 50), (120, 90, 60))).convert("RGB").save(path)


@pytest.fixture(scope="module")
def full_tree(voxceleb1_samples, tmp_path_factory):
    """All 1,251 VoxCeleb1 identities with voices (two videos, 1 + 2 segments); faces for 1,225 of them (26
    dropped: 18 F-Z, 4 A-B, 4 C-E, as in the thesis's join) and for 3 VGGFace-only names."""
    root = tmp_path_factory.mktemp("corpora")
    meta = _meta(voxceleb1_samples)
    shutil.copy(voxceleb1_samples / "vox1_meta.csv", root / "vox1_meta.csv")
    rng = np.random.default_rng(0)
    _wav(root / "one.wav")
    _jpg(root / "one.jpg")
    wav, jpg = (root / "one.wav").read_bytes(), (root / "one.jpg").read_bytes()
    first = np.array([r["name"][0].upper() for r in meta])
    pools = [np.flatnonzero(np.isin(first, list(s))) for s in ("AB", "CDE")]
    pools.append(np.flatnonzero(~np.isin(first, list("ABCDE"))))
    drop = set(np.concatenate([rng.choice(p, k, replace=False) for p, k in zip(pools, (4, 4, 18))]).tolist())
    for i, r in enumerate(meta):
        for video, n in (("1zcIwhmdeo4", 1), ("7w0IBEWc9Qw", 2)):
            folder = root / "vox1" / "wav" / r["vox_id"] / video
            folder.mkdir(parents=True)
            for k in range(1, n + 1):
                (folder / f"{k:05d}.wav").write_bytes(wav)
        if i not in drop:
            (root / "vggface" / r["name"]).mkdir(parents=True)
            for k in range(1, 3):
                (root / "vggface" / r["name"] / f"{k:08d}.jpg").write_bytes(jpg)
    for name in ("Aaron_Not_In_Vox", "Zed_Face_Only", "Mia_Face_Only"):
        _jpg(root / "vggface" / name / "00000001.jpg")
    kept = [r for i, r in enumerate(meta) if i not in drop]
    return root, kept


def test_counts_match_meta_and_table_2_1(full_tree, eval_lists, capsys):
    root, kept = full_tree
    code = main(["prepare", "voxceleb", "--vox1", str(root / "vox1"), "--faces", str(root / "vggface"),
                 "--out", str(root / "out"), "--no-align", "--no-features", "--split", "pins",
                 "--pins-file", str(eval_lists), "--workers", "1"])
    text = capsys.readouterr().out
    assert code == 0
    assert "joined 1225 identities" in text and "(26 with voices only, 3 with faces only" in text
    m = read_manifest(root / "out" / "manifest.csv")
    authors = split_counts(m, "split_authors")
    # Table 2.1: 924 / 112 / 189 identities of 1,225
    assert [authors[s]["identities"] for s in ("train", "val", "test", "total")] == [924, 112, 189, 1225]
    assert authors["total"]["speech segments"] == 3 * 1225 and authors["total"]["face images"] == 2 * 1225
    genders = [r["gender"] for r in kept]
    assert (authors["total"]["male ids"], authors["total"]["female ids"]) == (genders.count("m"), genders.count("f"))
    assert authors["total"]["nationalities"] == len({r["nationality"] for r in kept})
    # the published Learnable PINs split, read here independently of the package
    published = dict(line.split() for line in open(eval_lists / "splits" / "identity_splits.txt") if line.strip())
    want = {v: sum(PINS[published[r["name"]]] == v for r in kept) for v in ("train", "val", "test")}
    pins = split_counts(m, "split")
    assert {s: pins[s]["identities"] for s in ("train", "val", "test")} == want
    assert sum(want.values()) == 1225 and "" not in pins
    row = {it.identity: it for it in m if it.modality == "face"}[kept[0]["name"]]
    assert (row.gender, row.nationality, row.extra["vox_id"]) == (kept[0]["gender"], kept[0]["nationality"],
                                                                    kept[0]["vox_id"])
    for header in ("authors split", "PINs split", "identities", "speech segments", "face images", "male ids"):
        assert header in text


@pytest.fixture()
def small_tree(voxceleb1_samples, orl_faces, tmp_path):
    """Two real VoxCeleb1 voices filed under their real ids; ORL faces as VGGFace JPEGs; one corrupt JPEG."""
    meta = {r["name"]: r for r in _meta(voxceleb1_samples)}
    shutil.copy(voxceleb1_samples / "vox1_meta.csv", tmp_path / "vox1_meta.csv")
    for name, subject in (("Alan_Tudyk", "s1"), ("Woody_Harrelson", "s2")):
        _wav(tmp_path / "vox1" / "wav" / meta[name]["vox_id"] / "abcDEF12345" / "00001.wav",
             src=voxceleb1_samples / f"{name}.wav")
        for k in (1, 2):
            _jpg(tmp_path / "vggface" / name / f"{k:08d}.jpg", Image.open(orl_faces / subject / f"{k}.pgm"))
    (tmp_path / "vggface" / "Woody_Harrelson" / "00000003.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return tmp_path


def test_align_features_resume_and_corrupt_image(small_tree, monkeypatch):
    pytest.importorskip("dlib")
    monkeypatch.chdir(small_tree)      # relative paths, as typed on a command line
    args = dict(vox1="vox1", faces=["vggface"], out="out",
                sizes=(128, 64), workers=2)
    first = prepare_corpus(**args)
    assert (first.align.computed, first.align.reused, first.features_computed) == (4, 0, 2)
    assert len(first.face_failures) == 1 and "00000003.jpg" in first.face_failures[0][0]
    m = read_manifest(first.path)
    faces = m.select(modality="face")
    assert len(faces) == 4 and len(m.select(modality="voice")) == 2
    for it in faces:
        assert it.path.endswith(".png") and Image.open(it.path).size == (128, 128)
        assert Image.open(face_path(it, 64, m.root)).size == (64, 64)
    crop = small_tree / "out" / "faces" / "Alan_Tudyk" / "00000001.png"
    stamp = crop.stat().st_mtime_ns
    second = prepare_corpus(**args)
    assert (second.align.computed, second.align.reused, second.features_reused) == (0, 4, 2)
    assert second.features_computed == 0 and len(second.face_failures) == 1 and second.align.known == 1
    assert crop.stat().st_mtime_ns == stamp
    third = prepare_corpus(**args, retry_failed=True)     # the bad image is decoded again and fails again
    assert (third.align.computed, third.align.known, len(third.face_failures)) == (0, 0, 1)
    assert len(list((small_tree / "out" / "cache" / "logmel64").glob("*.npy"))) == 2


def test_cli_reports_corrupt_image_without_align(small_tree, capsys, monkeypatch):
    monkeypatch.delenv("VOICEFACE_LISTS", raising=False)
    code = main(["prepare", "voxceleb", "--vox1", str(small_tree / "vox1"), "--faces", str(small_tree / "vggface"),
                 "--out", str(small_tree / "o"), "--no-align", "--no-features"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "00000003.jpg" in err and "face images: 1 unreadable" in out
    assert "PINs split: not computed" in out
    m = read_manifest(small_tree / "o" / "manifest.csv")
    assert sorted(m.identities()) == ["Alan_Tudyk", "Woody_Harrelson"]
    assert {it.split for it in m} == {"val", "train"}     # Alan -> A-B val, Woody -> F-Z train


def test_voxceleb2_joins_vggface2_ids(small_tree, capsys, write_m4a):
    (small_tree / "vox2").mkdir()
    (small_tree / "vox2" / "vox2_meta.csv").write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
                                                       "id00012 ,n000012 ,f ,dev \nid00015 ,n000015 ,m ,test \n")
    write_m4a(small_tree / "vox2" / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a")
    write_m4a(small_tree / "vox2" / "aac" / "id00015" / "0fijmz4vTVU" / "00001.m4a")
    _jpg(small_tree / "vggface2" / "train" / "n000012" / "0001_01.jpg")
    code = main(["prepare", "voxceleb", "--vox1", str(small_tree / "vox1"), "--vox2", str(small_tree / "vox2"),
                 "--faces", str(small_tree / "vggface"), str(small_tree / "vggface2"), "--out", str(small_tree / "o"),
                 "--no-align", "--no-features", "--no-probe", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "joined 3 identities" in out and "(1 with voices only" in out
    m = read_manifest(small_tree / "o" / "manifest.csv")
    rows = [it for it in m if it.identity == "n000012"]
    assert {it.modality for it in rows} == {"voice", "face"} and {it.gender for it in rows} == {"f"}
    assert rows[0].extra["split_authors"] == "train" and rows[0].extra["split_pins"] == ""
    assert all(it.duration is None for it in m.select(modality="voice"))      # --no-probe


def test_crop_names_never_collide_and_follow_align_rule(tmp_path):
    """Images of one identity whose names differ only by extension, case or after their first dot get one crop each,
    named by the rule ``voiceface align`` uses (face.detect.unique_output), never written over each other."""
    from voiceface.data.manifest import Item
    from voiceface.data.prepare import _plan_crops
    from voiceface.face.detect import plan_outputs

    root = tmp_path / "vgg" / "Ann_Lee"
    root.mkdir(parents=True)
    paths = sorted([root / "0001.jpg", root / "0001.png", root / "0001.JPG", root / "person01.smile",
                    root / "person01.glasses"])
    for p in paths:
        Image.new("RGB", (8, 8)).save(p, format="PNG" if p.suffix == ".png" else "JPEG")
    items = [Item(path=str(p), modality="face", identity="Ann_Lee") for p in paths]
    plan = _plan_crops(items, tmp_path / "out", (128, 64))
    rel = [plan[str(p)][128].relative_to(tmp_path / "out" / "faces").with_suffix("").as_posix() for p in paths]
    assert len({r.lower() for r in rel}) == len(paths)
    assert rel == ["Ann_Lee/0001", "Ann_Lee/Ann_Lee_0001", "Ann_Lee/0001.png", "Ann_Lee/person01.glasses",
                   "Ann_Lee/person01.smile"]
    assert [got.as_posix() for _, got in plan_outputs([root.parent]).jobs] == rel
