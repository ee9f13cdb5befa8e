"""Manifest builders on fake trees mirroring the real corpus layouts, and on the real vox1_meta.csv."""
import shutil

import numpy as np
import pytest
import soundfile
from PIL import Image

from voiceface.data import adapters, read_manifest, write_manifest
from voiceface.errors import InputError

VOX1_META_HEAD = ("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                  "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
                  "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
                  "id10309\tFreddie_Highmore\tm\tUK\ttest\n"
                  "id10003\tZoe_Test\tf\tUSA\tdev\n")
VOX2_META = ("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
             "id00012 ,n000012 ,m ,dev \n"
             "id00015 ,n000015 ,f ,test \n")


def _wav(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(int(16000 * seconds), np.int16), 16000, subtype="PCM_16")


def _img(path, w=40, h=50):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


@pytest.fixture
def vox1_tree(tmp_path):
    root = tmp_path / "vox1"
    _wav(root / "wav" / "id10001" / "1zcIwhmdeo4" / "00001.wav", 1.5)
    _wav(root / "wav" / "id10001" / "1zcIwhmdeo4" / "00002.wav", 0.5)
    _wav(root / "wav" / "id10001" / "7gWzIy6yIIk" / "00001.wav", 1.0)
    _wav(root / "wav" / "id10309" / "abc" / "00001.wav", 2.0)
    _wav(root / "wav" / "id19999" / "xyz" / "00001.wav", 1.0)       # not in the metadata
    (root / "wav" / "id10001" / "notes.txt").write_text("ignored")
    (root / "vox1_meta.csv").write_text(VOX1_META_HEAD)
    return root


def test_voxceleb1_tree(vox1_tree):
    m = adapters.voxceleb1(vox1_tree)                    # finds vox1_meta.csv in ROOT
    assert len(m) == 5 and {it.modality for it in m} == {"voice"}
    assert all(it.extra["vox_id"] == it.path.split("/")[-3] for it in m)
    by = {(it.extra["vox_id"], it.session, it.path.rsplit("/", 1)[1]): it for it in m}
    a = by[("id10001", "1zcIwhmdeo4", "00001.wav")]
    assert (a.identity, a.gender, a.nationality, a.extra["vox_set"]) == ("A.J._Buckley", "m", "Ireland", "dev")
    assert a.duration == pytest.approx(1.5)
    assert by[("id10309", "abc", "00001.wav")].identity == "Freddie_Highmore"
    unknown = [it for it in m if it.identity == "id19999"]
    assert len(unknown) == 1 and unknown[0].gender == ""
    # the wav/ level may be given directly, and meta explicitly
    m2 = adapters.voxceleb1(vox1_tree / "wav", meta=vox1_tree / "vox1_meta.csv", probe=False)
    assert [it.path for it in m2] == [it.path for it in m] and m2[0].duration is None


def test_voxceleb2_tree(tmp_path, write_m4a):
    root = tmp_path / "vox2"
    write_m4a(root / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a", 1.0)
    write_m4a(root / "aac" / "id00015" / "0fijmz4vTVU" / "00003.m4a", 0.5)
    (tmp_path / "vox2_meta.csv").write_text(VOX2_META)    # found in ROOT's parent
    m = adapters.voxceleb2(root)
    assert [(it.identity, it.gender, it.session, it.extra["vox_id"], it.extra["vox_set"]) for it in m] == [
        ("n000012", "m", "21Uxsk56VDQ", "id00012", "dev"), ("n000015", "f", "0fijmz4vTVU", "id00015", "test")]
    assert m[0].duration == pytest.approx(1.0, abs=0.1)


def test_vggface_and_folders(tmp_path, voxceleb1_samples):
    faces = tmp_path / "vgg"
    _img(faces / "A.J._Buckley" / "00000001.jpg", 60, 70)
    _img(faces / "A.J._Buckley" / "00000002.png")
    _img(faces / "Zoe_Saldana" / "sub" / "1.jpg")
    (faces / "Zoe_Saldana" / "readme.txt").write_text("x")
    m = adapters.vggface(faces, meta=voxceleb1_samples / "vox1_meta.csv")
    assert len(m) == 3 and {it.modality for it in m} == {"face"}
    assert (m[0].identity, m[0].gender, m[0].nationality, m[0].width, m[0].height) == \
        ("A.J._Buckley", "m", "Ireland", 60, 70)
    assert m[2].identity == "Zoe_Saldana" and m[2].gender == "f" and m[2].session == "sub"

    mixed = tmp_path / "mixed"
    _img(mixed / "alice" / "a.jpg")
    _wav(mixed / "alice" / "clips" / "a.wav", 1.0)
    _wav(mixed / "bob" / "b.flac", 0.25)
    m = adapters.folders(mixed)
    assert sorted((it.identity, it.modality) for it in m) == [("alice", "face"), ("alice", "voice"), ("bob", "voice")]
    assert next(it for it in m if it.identity == "bob").duration == pytest.approx(0.25)
    assert len(adapters.vggface(mixed)) == 1
    with pytest.raises(InputError, match="no voice or face files"):
        adapters.folders(tmp_path / "vgg" / "Zoe_Saldana" / "sub")
    with pytest.raises(InputError, match="not found"):
        adapters.folders(tmp_path / "nowhere")


def test_manifest_roundtrip_and_corrupt_headers(tmp_path, vox1_tree):
    _wav(vox1_tree / "wav" / "id10002" / "v" / "00001.wav", 1.0)
    (vox1_tree / "wav" / "id10002" / "v" / "00002.wav").write_bytes(b"RIFF junk")   # corrupt: kept, no duration
    m = adapters.voxceleb1(vox1_tree)
    bad = next(it for it in m if it.path.endswith("v/00002.wav"))
    assert bad.duration is None
    path = write_manifest(m, tmp_path / "out" / "m.csv")
    back = read_manifest(path)
    assert [(it.path, it.identity, it.gender, it.session, it.duration, it.extra.get("vox_id")) for it in back] == \
        [(it.path, it.identity, it.gender, it.session, it.duration, it.extra.get("vox_id")) for it in m]


def test_real_vox1_meta(voxceleb1_samples):
    people = adapters.read_meta(voxceleb1_samples / "vox1_meta.csv")
    assert len(people) == 1251
    assert len({p.identity for p in people}) == 1251
    assert all(p.vox_id.startswith("id1") for p in people)
    genders = [p.gender for p in people]
    assert set(genders) == {"m", "f"}
    assert 500 < genders.count("f") < 700
    assert sum(p.vox_set == "test" for p in people) == 40
    first = people[0]
    assert (first.identity, first.vox_id, first.gender, first.nationality) == ("A.J._Buckley", "id10001", "m",
                                                                               "Ireland")


def test_real_samples_as_folders(tmp_path, voxceleb1_samples):
    # the 10 real VoxCeleb1 utterances, filed one folder per name, get their real covariates from vox1_meta
    for wav in sorted(voxceleb1_samples.glob("*.wav")):
        (tmp_path / wav.stem).mkdir()
        shutil.copy(wav, tmp_path / wav.stem / "1.wav")
    m = adapters.folders(tmp_path, meta=voxceleb1_samples / "vox1_meta.csv")
    assert len(m) == 10 and all(it.gender in ("m", "f") and it.nationality for it in m)
    assert all(3 <= it.duration <= 10.5 for it in m)
    table = m.identity_table()
    assert table["Woody_Harrelson"]["gender"] == "m" and table["Witney_Carson"]["gender"] == "f"


def test_meta_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        adapters.read_meta(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(InputError, match="no identity column"):
        adapters.read_meta(tmp_path / "bad.csv")
    (tmp_path / "vox2.csv").write_text(VOX2_META)
    people = adapters.read_meta(tmp_path / "vox2.csv")
    assert [(p.identity, p.vox_id, p.vgg_id, p.gender) for p in people] == [
        ("n000012", "id00012", "n000012", "m"), ("n000015", "id00015", "n000015", "f")]


def test_manifest_command(tmp_path, vox1_tree, eval_lists):
    from voiceface.cli import main

    out = tmp_path / "m.csv"
    assert main(["manifest", "voxceleb1", str(vox1_tree), "--out", str(out), "--split", "authors"]) == 0
    m = read_manifest(out)
    assert len(m) == 5
    assert {it.identity: it.split for it in m} == {"A.J._Buckley": "val", "Freddie_Highmore": "train",
                                                  "id19999": "train"}
    assert main(["manifest", "voxceleb1", str(vox1_tree), "--out", str(out), "--split", "pins",
                 "--pins-file", str(eval_lists), "--no-probe"]) == 0
    m = read_manifest(out)
    assert {it.identity: it.split for it in m} == {"A.J._Buckley": "train", "Freddie_Highmore": "val",
                                                  "id19999": ""}
    assert m[0].duration is None
    assert main(["manifest", "folders", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_vggface2_release_layout(tmp_path):
    root = tmp_path / "vggface2"
    _img(root / "train" / "n000002" / "0001_01.jpg")
    _img(root / "train" / "n000002" / "0002_01.jpg")
    _img(root / "test" / "n000001" / "0001_01.jpg")
    (tmp_path / "identity_meta.csv").write_text(
        'Class_ID, Name, Sample_Num, Flag, Gender\nn000001, "14th_Dalai_Lama", 424, 0, m\n'
        'n000002, "A_Fine_Frenzy", 315, 1, f\n')
    m = adapters.vggface(root, meta=tmp_path / "identity_meta.csv")
    assert [(it.identity, it.gender, it.extra["vgg_set"]) for it in m] == [
        ("n000001", "m", "test"), ("n000002", "f", "train"), ("n000002", "f", "train")]
    people = adapters.read_meta(tmp_path / "identity_meta.csv")
    assert (people[0].identity, people[0].vgg_id) == ("14th_Dalai_Lama", "n000001")
