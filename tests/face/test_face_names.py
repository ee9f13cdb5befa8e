"""Batch naming of `voiceface align`: one crop per input, folders scanned by content (no dlib needed)."""
import numpy as np
from PIL import Image

from voiceface.face.detect import plan_outputs as plan
from voiceface.face.detect import image_stem, is_image_file, scan_images


def _img(path, fmt):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path, format=fmt)


def test_names_differing_after_first_dot_get_their_own_crops(tmp_path):
    for name, fmt in (("person01.smile", "GIF"), ("person01.glasses", "PNG"), ("person01.jpg", "JPEG"),
                      ("person01.sad", "PPM")):
        _img(tmp_path / name, fmt)
    (tmp_path / "notes.txt").write_text("BMX is not an image\n")
    p = plan([str(tmp_path)])
    outs = sorted(str(rel) for _, rel in p.jobs)
    assert outs == ["person01", "person01.glasses", "person01.sad", "person01.smile"]
    assert p.skipped == 1 and p.renamed == []


def test_clashing_inputs_are_renamed_never_shared(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _img(tmp_path / sub / "x.jpg", "JPEG")
    _img(tmp_path / "a" / "x.png", "PNG")
    _img(tmp_path / "a" / "X.bmp", "BMP")
    args = [str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg"), str(tmp_path / "a")]
    p = plan(args)
    outs = [str(rel).lower() for _, rel in p.jobs]
    assert len(p.jobs) == 5 and len(set(outs)) == 5
    assert len(p.renamed) == 4 and all("written as" in line for line in p.renamed)


def test_content_sniffing_and_stems(tmp_path):
    _img(tmp_path / "a.smile", "GIF")
    (tmp_path / "b.smile").write_bytes(b"hello")
    assert is_image_file(tmp_path / "a.smile") and not is_image_file(tmp_path / "b.smile")
    assert scan_images(tmp_path) == ([tmp_path / "a.smile"], 1)
    assert image_stem("person01.smile") == "person01.smile"
    assert image_stem("a.b.JPG") == "a.b"


def test_features_outputs_keep_names_after_first_dot(tmp_path):
    from voiceface.commands.features import plan_outputs

    jobs, bad = plan_outputs([str(tmp_path / "rec.take1"), str(tmp_path / "rec.take2"), str(tmp_path / "a.wav"),
                              str(tmp_path / "a.flac")], tmp_path / "out")
    assert [d.name for _, d in jobs] == ["rec.take1.npy", "rec.take2.npy", "a.npy"]
    assert len(bad) == 1 and "same output name a.npy" in bad[0][1]


def test_flat_outputs_for_reconstruct_never_share_a_name(tmp_path):
    for sub, name, fmt in (("s1", "1.png", "PNG"), ("s2", "1.png", "PNG"), ("a", "person01.smile", "GIF"),
                           ("a", "person01.glasses", "GIF"), ("b", "person01.smile", "GIF")):
        (tmp_path / sub).mkdir(exist_ok=True)
        _img(tmp_path / sub / name, fmt)
    p = plan([str(tmp_path)], flat=True)
    names = [str(rel) for _, rel in p.jobs]
    assert names == ["person01.glasses", "person01.smile", "b_person01.smile", "1", "s2_1"]
    assert len(p.renamed) == 2
