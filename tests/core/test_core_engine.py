import json

import pytest
import torch

from voiceface.engine import Parts, Run, fit, load_checkpoint
from voiceface.errors import ConfigError, InputError


def _parts(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    return Parts({"net": model}, {"sgd": opt}, {"lr": sched})


def _batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)


def _step_fn(parts):
    def step(batch, step):
        x, y = batch
        loss = torch.nn.functional.mse_loss(parts.models["net"](x), y)
        parts.optimizers["sgd"].zero_grad()
        loss.backward()
        parts.optimizers["sgd"].step()
        return {"loss": loss.item()}
    return step


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    full = _parts()
    run_a = Run.create(tmp_path / "a", "toy", {"k": 1})
    fit(run_a, full, method="toy", config={"k": 1}, batch_fn=_batch, step_fn=_step_fn(full), total_steps=20,
        log_every=5, checkpoint_every=4, progress=False)

    killed = _parts()
    run_b = Run.create(tmp_path / "b", "toy", {"k": 1})
    fit(run_b, killed, method="toy", config={"k": 1}, batch_fn=_batch, step_fn=_step_fn(killed), total_steps=20,
        log_every=5, checkpoint_every=4, progress=False, stop_after=10)   # "killed" after 10 steps: ckpt at 8
    assert load_checkpoint(run_b.checkpoint_path)["step"] == 8
    resumed = _parts(seed=123)   # fresh process: different init, must be overwritten by the checkpoint
    fit(run_b, resumed, method="toy", config={"k": 1}, batch_fn=_batch, step_fn=_step_fn(resumed), total_steps=20,
        log_every=5, checkpoint_every=4, progress=False)
    for a, b in zip(full.models["net"].parameters(), resumed.models["net"].parameters()):
        torch.testing.assert_close(a, b)
    ckpt = load_checkpoint(run_b.checkpoint_path)
    assert ckpt["step"] == 20 and ckpt["method"] == "toy" and ckpt["config"] == {"k": 1}
    assert [r["step"] for r in run_a.read_log() if "event" not in r] == [5, 10, 15, 20]
    starts = [r for r in run_b.read_log() if r.get("event") == "start"]
    assert [(r["step"], r["resumed"]) for r in starts] == [(0, False), (8, True)]
    assert starts[0]["world_size"] == 1 and starts[0]["device"] == "cpu" and starts[0]["precision"] == "fp32"


def test_run_folder_guards(tmp_path):
    Run.create(tmp_path / "r", "dimnet", {})
    with pytest.raises(InputError, match="belongs to method 'dimnet'"):
        Run.create(tmp_path / "r", "gan", {})
    with pytest.raises(InputError, match="not a run folder"):
        Run.open(tmp_path / "nothing")
    run = Run.open(tmp_path / "r")
    run.write_results({"acc": torch.tensor(0.5), "nan": float("nan")})
    assert json.loads((tmp_path / "r" / "results.json").read_text()) == {"acc": 0.5, "nan": None}


def test_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a voiceface checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_resume_with_changed_config_refuses_naming_keys(tmp_path):
    parts = _parts()
    cfg = {"net": {"width": 2, "depth": 1}, "lr": 0.1, "steps": (4, 8)}
    run = Run.create(tmp_path / "r", "toy", cfg)
    fit(run, parts, method="toy", config=cfg, batch_fn=_batch, step_fn=_step_fn(parts), total_steps=4,
        log_every=2, checkpoint_every=2, progress=False)
    assert Run.create(tmp_path / "r", "toy", {**cfg, "steps": [4, 8]}).path == tmp_path / "r"   # same content
    changed = {"net": {"width": 3, "depth": 1}, "lr": 0.2, "steps": (4, 8), "new": 1}
    with pytest.raises(ConfigError) as e:
        Run.create(tmp_path / "r", "toy", changed)
    msg = str(e.value)
    assert "\n" not in msg and "changed config (lr, net.width, new)" in msg and "--force-config" in msg
    assert Run.create(tmp_path / "fresh", "toy", cfg) and Run.create(tmp_path / "fresh", "toy", changed)  # no ckpt


def test_resume_accepts_a_new_field_at_its_default_and_records_it(tmp_path):
    parts = _parts()
    old = {"net": {"width": 2}, "lr": 0.1, "dropped": 1}
    run = Run.create(tmp_path / "r", "toy", old)
    fit(run, parts, method="toy", config=old, batch_fn=_batch, step_fn=_step_fn(parts), total_steps=4,
        log_every=2, checkpoint_every=2, progress=False)
    defaults = {"net": {"width": 8, "gate": False}, "lr": 0.5, "extra": 0, "dropped": 1}
    new = {"net": {"width": 2, "gate": False}, "lr": 0.1, "extra": 0, "dropped": 1}  # two fields the run predates
    with pytest.raises(ConfigError, match=r"changed config \(extra\)"):            # a new field off its default
        Run.create(tmp_path / "r", "toy", {**new, "extra": 1}, defaults=defaults)
    with pytest.raises(ConfigError, match=r"changed config \(dropped\)"):          # a recorded field removed
        Run.create(tmp_path / "r", "toy", {k: v for k, v in new.items() if k != "dropped"}, defaults=defaults)
    run = Run.create(tmp_path / "r", "toy", new, defaults=defaults)
    assert run.config == new
    event = [r for r in run.read_log() if r.get("event") == "config_upgraded"]
    assert [e["added"] for e in event] == [{"extra": 0, "net.gate": False}] and event[0]["step"] == 4


def _world(folder, rows: str):
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("path,modality,identity\n" + rows)
    return folder


def test_the_data_digest_is_what_a_run_is_and_its_path_is_where_it_was(tmp_path):
    """One rule for every method: resuming on other data is a config change named ``data``; the same data moved
    (a demo folder copied elsewhere) resumes, records the new path, logs a ``data_moved`` event and keeps it in
    the checkpoint's extras."""
    parts = _parts()
    a = _world(tmp_path / "a", "v/0.wav,voice,p0\n")
    run = Run.create(tmp_path / "r", "toy", {"lr": 0.1}, data=a)
    fit(run, parts, method="toy", config={"lr": 0.1}, batch_fn=_batch, step_fn=_step_fn(parts), total_steps=4,
        log_every=2, checkpoint_every=2, progress=False)
    assert run.data == str(a / "manifest.csv") == load_checkpoint(run.checkpoint_path)["extra"]["data"]
    other = _world(tmp_path / "b", "v/0.wav,voice,p1\n")
    with pytest.raises(ConfigError, match=r"changed config \(data\)"):
        Run.create(tmp_path / "r", "toy", {"lr": 0.1}, data=other)
    moved = _world(tmp_path / "moved", "v/0.wav,voice,p0\n")
    run = Run.create(tmp_path / "r", "toy", {"lr": 0.1}, data=moved)
    assert run.data == str(moved / "manifest.csv")
    assert [(e["from"], e["to"]) for e in run.read_log() if e.get("event") == "data_moved"] == \
        [(str(a / "manifest.csv"), str(moved / "manifest.csv"))]
    parts2 = _parts()
    fit(run, parts2, method="toy", config={"lr": 0.1}, batch_fn=_batch, step_fn=_step_fn(parts2), total_steps=6,
        log_every=2, checkpoint_every=2, progress=False)
    assert load_checkpoint(run.checkpoint_path)["extra"]["data"] == str(moved / "manifest.csv")
    relocated = Run.create(tmp_path / "r", "toy", {"lr": 0.1, "eval_run": "/elsewhere"}, data=moved,
                           unchecked=("eval_run",))                  # a key that only says where something is
    assert relocated.config["eval_run"] == "/elsewhere"
    with pytest.raises(ConfigError, match=r"changed config \(eval_run\)"):
        Run.create(tmp_path / "r", "toy", {"lr": 0.1, "eval_run": "/again"}, data=moved)
    forced = Run.create(tmp_path / "r", "toy", {"lr": 0.1}, data=other, force_config=True)
    assert forced.data == str(other / "manifest.csv")


def test_a_run_that_kept_its_data_path_in_the_config_resumes_from_a_moved_copy(tmp_path):
    """GAN / SfV runs before the data record stored the path as a config key (``manifest`` / ``data_source``)."""
    parts = _parts()
    old = {"lr": 0.1, "manifest": "/gone/world/manifest.csv"}
    run = Run.create(tmp_path / "r", "toy", old)
    fit(run, parts, method="toy", config=old, batch_fn=_batch, step_fn=_step_fn(parts), total_steps=4,
        log_every=2, checkpoint_every=2, progress=False)
    assert run.data == "/gone/world/manifest.csv"
    here = _world(tmp_path / "world", "v/0.wav,voice,p0\n")
    run = Run.create(tmp_path / "r", "toy", {"lr": 0.1}, data=here)
    assert run.config == {"lr": 0.1} and run.data == str(here / "manifest.csv")
    with pytest.raises(ConfigError, match=r"changed config \(lr\)"):
        Run.create(tmp_path / "r", "toy", {"lr": 0.2}, data=here)


def test_force_config_is_logged_and_architecture_change_is_one_error(tmp_path):
    parts = _parts()
    run = Run.create(tmp_path / "r", "toy", {"width": 2})
    fit(run, parts, method="toy", config={"width": 2}, batch_fn=_batch, step_fn=_step_fn(parts), total_steps=4,
        log_every=2, checkpoint_every=2, progress=False)
    run = Run.create(tmp_path / "r", "toy", {"width": 3}, force_config=True)
    event = [r for r in run.read_log() if r.get("event") == "force_config"]
    assert event == [{"event": "force_config", "changed": {"width": [2, 3]}, "step": 4, "time": event[0]["time"]}]
    assert run.config == {"width": 3}
    wider = Parts({"net": torch.nn.Linear(4, 3)}, {})
    with pytest.raises(ConfigError, match="checkpoint's 'net' does not fit the configured architecture"):
        fit(run, wider, method="toy", config={"width": 3}, batch_fn=_batch, step_fn=_step_fn(wider),
            total_steps=8, progress=False)
    with pytest.raises(ConfigError, match="has no model 'other'"):
        fit(run, Parts({"other": torch.nn.Linear(4, 2)}), method="toy", config={}, batch_fn=_batch,
            step_fn=_step_fn(parts), total_steps=8, progress=False)
