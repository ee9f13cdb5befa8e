import pytest

from voiceface.data import Item, read_manifest, write_manifest
from voiceface.errors import InputError


def test_roundtrip_relative_paths(tmp_path):
    (tmp_path / "v").mkdir()
    items = [Item(str(tmp_path / "v" / "a.wav"), "voice", "id1", "m", "USA", "train", 31.0, "s1", 3.5),
             Item(str(tmp_path / "v" / "b.png"), "face", "id2", "f", "UK", "test", width=128, height=128,
                  extra={"path64": "x.png"})]
    out = write_manifest(items, tmp_path / "m.csv")
    assert "v/a.wav" in out.read_text()
    m = read_manifest(out)
    assert list(m) == items
    assert m[1].extra == {"path64": "x.png"}
    assert len(m.select(modality="voice")) == 1 and len(m.select(split=("train", "test"))) == 2
    assert m.identities() == ["id1", "id2"]
    assert m.identity_table()["id2"] == {"gender": "f", "nationality": "UK"}


def test_errors_name_file_and_line(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    f = tmp_path / "bad.csv"
    f.write_text("path,modality,identity,duration\na.wav,voice,x,abc\n")
    with pytest.raises(InputError, match=r"line 2: 'duration' is not a number"):
        read_manifest(f)
    f.write_text("path,modality,identity\na.wav,sound,x\n")
    with pytest.raises(InputError, match="modality 'sound'"):
        read_manifest(f)
    f.write_text("file,who\n")
    with pytest.raises(InputError, match="missing column"):
        read_manifest(f)
