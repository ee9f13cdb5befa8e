"""DDP: two CPU ranks (gloo) under torchrun train the GAN (slow: starts two interpreters)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakeworld import TINY


@pytest.mark.slow
def test_two_rank_ddp_training(gan_world, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(f"""
        import torch, torch.distributed as d
        torch.set_num_threads(1)
        from voiceface.methods.gan.train import train
        train({str(gan_world)!r}, {str(tmp_path / 'run')!r}, overrides={TINY!r}, progress=False)
        print("rank", d.get_rank(), "of", d.get_world_size(), flush=True)
        d.destroy_process_group()
    """))
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run([str(torchrun), "--nproc_per_node=2", str(script)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rank 0 of 2" in out.stdout and "rank 1 of 2" in out.stdout
    from voiceface.engine import load_checkpoint
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 6
