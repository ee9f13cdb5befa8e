"""Shared fixtures: paths to the real samples in ../shared/data (tests skip with a reason when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VOICEFACE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Every test runs on one torch thread: two xdist workers share two cores, and the small tensors of the tests
    run fastest single-threaded. The previous setting is restored at the end of the session."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shared(sub: str) -> Path:
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"real sample data not found at {p} (set VOICEFACE_SHARED_DATA or place ../shared/data)")
    return p


@pytest.fixture(scope="session")
def voxceleb1_samples() -> Path:
    return _shared("voxceleb1_samples")


@pytest.fixture(scope="session")
def librispeech() -> Path:
    return _shared("librispeech_test_other")


@pytest.fixture(scope="session")
def orl_faces() -> Path:
    return _shared("orl_faces")


@pytest.fixture(scope="session")
def eval_lists() -> Path:
    return _shared("voxceleb1_eval_lists")


LEARN_SEEDS = [int(s) for s in os.environ.get("VOICEFACE_LEARN_SEEDS", "0").split(",") if s.strip()]
"""Seeds of the "does it learn" tests: 0 by default; ``VOICEFACE_LEARN_SEEDS=0,1,2,3 ./run test -k learns -rP``
reruns each over several seeds and prints its measured metric and control (how their margins were chosen)."""


@pytest.fixture(params=LEARN_SEEDS, ids=lambda s: f"seed{s}")
def learn_seed(request) -> int:
    """The seed of one run of a learning test and of its control (``LEARN_SEEDS``)."""
    return request.param


@pytest.fixture(scope="session")
def learn_world(tmp_path_factory) -> Path:
    """A small simulated world for the "does it learn" tests (``tests/*/test_*_learns.py``), built once per test
    process (~15 s): 64 people split 40 / 12 / 12, three utterances and two photos each, no clips. The tiny preset's
    4 + 4 unseen identities are too few to tell a learned gender link from chance; 24 unseen identities are enough."""
    from voiceface.sim import build_world
    from voiceface.sim.presets import Preset

    preset = Preset("learn", identities=64, split=(40, 12, 12), utterances=3, sessions=1, duration_s=(2.0, 2.5),
                    snr_db=(25.0, 40.0), rt60_s=(0.0, 0.2), images=2, render_size=112, clips=0, clip_frames=(4, 4),
                    clip_size=64)
    root = tmp_path_factory.mktemp("learn_world")
    build_world(root, preset, seed=0, coupling=1.0, workers=1, progress=False)
    return root


_DDP_SCRIPT = '''
import importlib, torch, torch.distributed as d
torch.set_num_threads(1)
from voiceface.engine import dist
T = importlib.import_module({module!r})
seen = {{}}
real_fit = T.fit
def spy(run, parts, **kw):          # keep this rank's trained modules (those of the last fit)
    seen["parts"] = parts
    return real_fit(run, parts, **kw)
T.fit = spy
{setup}
{call}
def tensors(name, m):               # parameters; the whole state (buffers too) of the modules named in ``full``
    m = dist.unwrap(m)
    return m.state_dict().items() if name in {full!r} else m.named_parameters()
params = {{f"{{name}}.{{k}}": p.detach().clone() for name, m in seen["parts"].models.items()
          for k, p in tensors(name, m)}}
torch.save(params, {out!r} + f"/params_rank{{d.get_rank()}}.pt")
{after}
d.destroy_process_group()
'''


class TwoRanks:
    """Train a method under ``torchrun --nproc_per_node=2`` (gloo, CPU) and compare what each rank trained.

    ``run(module, call)``: ``module`` the method's train module (its ``fit`` is spied on to keep the trained
    modules), ``call`` the Python line that trains (``T`` is the module), ``setup`` / ``after`` lines before /
    after it, ``full`` names of modules compared with their buffers. Returns the two ranks' {"part.name": tensor}.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def run(self, module: str, call: str, *, setup: str = "", after: str = "", full: tuple[str, ...] = ()):
        import subprocess
        import sys
        import textwrap

        script = self.folder / "ddp.py"
        script.write_text(_DDP_SCRIPT.format(module=module, setup=textwrap.dedent(setup), call=call, full=full,
                                             out=str(self.folder), after=textwrap.dedent(after)))
        torchrun = Path(sys.executable).with_name("torchrun")
        out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return tuple(torch.load(self.folder / f"params_rank{r}.pt", weights_only=True) for r in (0, 1))

    @staticmethod
    def assert_equal(p0: dict, p1: dict, models: dict) -> None:
        """Both ranks hold the same tensors, and they are the checkpoint's (``models``: its "models" entry)."""
        assert p0.keys() == p1.keys() and len(p0) > 10
        for k, t in p0.items():
            part, name = k.split(".", 1)
            assert torch.equal(t, p1[k]), k
            assert torch.equal(t, models[part][name]), k


@pytest.fixture
def two_ranks(tmp_path) -> TwoRanks:
    return TwoRanks(tmp_path)
