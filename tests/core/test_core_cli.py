import subprocess
import sys

from voiceface.cli import main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "evaluate" in out


def test_unknown_method_is_one_line_error(tmp_path, capsys):
    code = main(["train", "nosuch", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "unknown method 'nosuch'" in err


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "voiceface.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "voiceface" in r.stdout


def test_overrides_may_interleave_with_options(tmp_path, capsys):
    # the override after --seed reaches the config loader (and is refused there by name)
    code = main(["train", "dimnet", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--seed", "1",
                 "no_such_key=2"])
    assert code == 2 and "unknown config key 'no_such_key'" in capsys.readouterr().err


def test_lists_option_is_dimnet_only(tmp_path, capsys):
    code = main(["evaluate", "gan", "--run", str(tmp_path), "--lists", str(tmp_path)])
    assert code == 2 and "--lists applies to dimnet only" in capsys.readouterr().err
