"""The demo driver: world, realism check, each method's section, the report and the terminal summary."""
from __future__ import annotations

import json

from voiceface import demo as demo_mod
from voiceface.errors import VoicefaceError
from voiceface.methods import DemoSection, Method


def _fake(name: str, fail: bool = False) -> Method:
    def run(world, out, seed=0, progress=False):
        if fail:
            raise VoicefaceError(f"{name} broke")
        return DemoSection(f"{name} section", f"{name} text", {"gen_gender_acc": 0.9, "other": 1.0})

    return Method(name, f"{name} method", train=None, evaluate=None, demo=run)


def test_run_demo_writes_report_summary_and_check(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_mod, "registry", lambda: {"gan": _fake("gan"), "bad": _fake("bad", fail=True)})
    monkeypatch.setenv("VOICEFACE_SHARED_DATA", str(tmp_path / "no-real-samples"))     # world column only: fast
    res = demo_mod.run_demo(tmp_path, preset="tiny", seed=0, workers=1, progress=False)
    assert res.failures == {"bad": "bad broke"}
    stages = [r["stage"] for r in res.summary]
    assert stages == ["world", "world check", "gan", "bad"]
    by = {r["stage"]: r for r in res.summary}
    assert by["gan"]["status"] == "ok" and by["gan"]["metrics"][0].startswith("gender of generated faces 0.9")
    assert by["bad"]["status"] == "failed"
    table = demo_mod.format_summary(res.summary)
    assert table.splitlines()[0].split()[:3] == ["stage", "time", "status"] and "world check" in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["gen_gender_acc"] == 0.9 and "gan" in results["timings_s"]
    md = (tmp_path / "report.md").read_text()
    assert "gan section" in md and "bad: failed" in md
    world = json.loads((tmp_path / "world" / "world.json").read_text())
    check = world.get("check", {})
    if by["world check"]["status"] == "ok":          # GE2E and dlib present: the figures are stored and shown
        assert 0.0 <= check["world.voice_eer"] <= 1.0 and 0.0 <= check["world.face_1nn"] <= 1.0
        assert any(m.startswith("GE2E EER") for m in by["world check"]["metrics"])
    assert (tmp_path / "report.html").is_file()
