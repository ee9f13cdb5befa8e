"""Training throughput of the four methods on one device: steps/s, samples/s and peak GPU memory per precision.

Each of DIMNet, GAN, CEST and SfV trains for ``--steps`` steps on a simulated world (``--world``; built there from
``--preset`` tiny | small when it has no manifest) through its own ``train`` (the engine loop, the input pipeline
with ``--workers``), once per precision of ``--precisions`` (fp32, bf16, fp16) given as the ``precision=...``
config override. Configs: ``--configs thesis`` (the thesis's widths and batch sizes: configs/dimnet/default.yaml,
gan/thesis.yaml, cest/default.yaml at the world's clip size, sfv/paper.yaml) or ``cpu`` (the narrow CPU presets).

The rate is the steady state: ``(s2 - s1) / (t2 - t1)`` between the loop's last two log rows of RUN/log.jsonl
(logged at half-way and at the end), so start-up, data preparation, cuDNN autotuning and the first steps do not
count; samples/s = steps/s x the method's minibatch (DIMNet voices + faces, GAN batch, CEST clips x frames, SfV
batch). Peak memory: ``torch.cuda.max_memory_allocated`` over the run (reset before it). The precision a run
actually trained in is read back from its ``start`` event. A config class without a ``precision`` field (before the
mixed-precision option exists) runs fp32 only and notes the skipped rows; a precision a method refuses (a config
error) is noted too. On CPU the figures are labelled CPU (a smoke check with small ``--steps``, not a benchmark).

    python bench/bm_gpu_train.py --device cuda [--steps 300] [--preset tiny] [--methods dimnet gan cest sfv]
    python bench/bm_gpu_train.py --device cpu --steps 4 --configs cpu          # smoke check
Prints a table and, with ``--json FILE``, writes the rows as JSON (always printed as one JSON line at the end).
Run folders live in a temporary folder removed at the end. The thesis configs are meant for the GPU: on a CPU,
SfV's paper config alone went past 20 GB of memory (killed) in a 2-step smoke run.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from voiceface.engine.dist import default_device
from voiceface.errors import ConfigError, InputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = {"thesis": {"dimnet": "dimnet/default.yaml", "gan": "gan/thesis.yaml", "cest": "cest/default.yaml",
                    "sfv": "sfv/paper.yaml"},
         "cpu": {"dimnet": "dimnet/cpu.yaml", "gan": "gan/cpu.yaml", "cest": "cest/cpu.yaml", "sfv": "sfv/cpu.yaml"}}
# dotted keys of the step count / log / checkpoint period per method
KEYS = {"dimnet": ("optim.steps", "log_every", "checkpoint_every"), "gan": ("steps", "log_every", "checkpoint_every"),
        "cest": ("optim.steps", "log_every", "checkpoint_every"),
        "sfv": ("train.steps", "train.log_every", "train.checkpoint_every")}
EXTRA = {"gan": ["encoder.pretrain_steps=20", "stable.sample_every=0"], "sfv": []}


def config_class(method: str):
    from voiceface.methods.cest.config import CESTConfig
    from voiceface.methods.dimnet.config import DIMNetConfig
    from voiceface.methods.gan.config import GANConfig
    from voiceface.methods.sfv.config import SfVConfig

    return {"dimnet": DIMNetConfig, "gan": GANConfig, "cest": CESTConfig, "sfv": SfVConfig}[method]


def train_module(method: str):
    """``voiceface.methods.<method>.train`` (its ``train`` takes ``progress``)."""
    return importlib.import_module(f"voiceface.methods.{method}.train")


def has_precision(method: str) -> bool:
    return any(f.name == "precision" for f in dataclasses.fields(config_class(method)))


def samples_per_step(method: str, cfg) -> int:
    if method == "dimnet":
        return cfg.data.voices_per_batch + cfg.data.faces_per_batch
    if method == "gan":
        return cfg.batch_size
    if method == "cest":
        return cfg.data.clips_per_batch * cfg.data.frames_per_clip
    return cfg.train.batch_size


def clip_size(world: Path) -> int:
    from voiceface.data.manifest import read_manifest

    return next((int(it.width) for it in read_manifest(world / "manifest.csv") if it.modality == "clip"
                 and it.width), 64)


def overrides_for(method: str, args, world: Path, precision: str | None) -> list[str]:
    steps, log_key, ckpt_key = KEYS[method]
    out = [f"{steps}={args.steps}", f"{log_key}={max(1, args.steps // 2)}", f"{ckpt_key}={10 * args.steps}",
           f"device={args.device}"] + EXTRA.get(method, [])
    if method == "cest":
        out.append(f"net.image_size={clip_size(world)}")
    if method == "sfv":
        out.append(f"train.select_every={args.steps}")
    if method in ("dimnet", "cest") and args.workers:
        out.append(f"data.workers={args.workers}")
    if precision is not None:
        out.append(f"precision={precision}")
    return out


def steady_rate(run: Path) -> tuple[float, str]:
    """(steps/s between the last two loop log rows, precision of the start event)."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start = [r for r in rows if r.get("event") == "start"]
    logged = [r for r in rows if "steps_per_s" in r]
    precision = str(start[-1].get("precision", "fp32")) if start else "?"
    if len(logged) < 2:
        return (logged[-1]["steps_per_s"] if logged else float("nan")), precision
    a, b = logged[-2], logged[-1]
    return (b["step"] - a["step"]) / max(b["time"] - a["time"], 1e-6), precision


def run_one(method: str, precision: str, args, world: Path, scratch: Path, device: torch.device) -> dict:
    from voiceface import config as cfglib

    row = {"method": method, "precision": precision, "device": str(device), "configs": args.configs}
    if precision != "fp32" and not has_precision(method):
        return {**row, "note": "skipped: this version has no `precision` config field"}
    cfg_file = CONFIGS / FILES[args.configs][method]
    ov = overrides_for(method, args, world, precision if has_precision(method) else None)
    try:
        cfg = cfglib.load_config(config_class(method), cfg_file, ov)
    except ConfigError as e:
        return {**row, "note": f"not allowed: {e}"}
    out = scratch / f"{method}_{precision}"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        train_module(method).train(str(world), str(out), config_file=str(cfg_file), overrides=ov, progress=False)
    except (ConfigError, InputError, RuntimeError) as e:        # e.g. a precision a method or device refuses
        return {**row, "note": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    wall = time.perf_counter() - t0
    rate, trained = steady_rate(out)
    row.update({"steps": args.steps, "batch": samples_per_step(method, cfg), "steps_per_s": rate,
                "samples_per_s": rate * samples_per_step(method, cfg), "trained_precision": trained,
                "wall_s": wall})
    if device.type == "cuda":
        row["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def table(rows: list[dict], cpu: bool) -> str:
    head = f"{'method':<7} {'precision':<9} {'steps/s':>9} {'samples/s':>10} {'peak MiB':>9} {'wall s':>7}  note"
    lines = [("CPU figures (smoke check, not a GPU benchmark)\n" if cpu else "") + head, "-" * len(head)]
    for r in rows:
        if "steps_per_s" not in r:
            lines.append(f"{r['method']:<7} {r['precision']:<9} {'-':>9} {'-':>10} {'-':>9} {'-':>7}  {r['note']}")
            continue
        mem = f"{r['peak_mem_mib']:.0f}" if "peak_mem_mib" in r else "-"
        note = "" if r["trained_precision"] == r["precision"] else f"trained in {r['trained_precision']}"
        lines.append(f"{r['method']:<7} {r['precision']:<9} {r['steps_per_s']:>9.2f} {r['samples_per_s']:>10.1f} "
                     f"{mem:>9} {r['wall_s']:>7.1f}  {note}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cuda | cpu")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default 300 on CUDA, 4 on CPU)")
    ap.add_argument("--world", type=Path, default=None,
                    help="world folder, kept (built there when it has no manifest.csv; default: a temporary one)")
    ap.add_argument("--preset", default="tiny", choices=("tiny", "small"))
    ap.add_argument("--configs", default=None, choices=("thesis", "cpu"),
                    help="thesis-size configs (default on CUDA) or the narrow CPU presets (default on CPU)")
    ap.add_argument("--methods", nargs="+", default=["dimnet", "gan", "cest", "sfv"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (DIMNet, CEST)")
    ap.add_argument("--build-workers", type=int, default=4, help="processes building the world")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    device = default_device(args.device)
    args.device = str(device)
    cuda = device.type == "cuda"
    args.steps = args.steps or (300 if cuda else 4)
    args.configs = args.configs or ("thesis" if cuda else "cpu")
    if args.configs == "thesis" and not cuda:
        print("note: thesis-size configs on the CPU need a lot of memory (SfV's paper config: > 20 GB)",
              file=sys.stderr)
    torch.backends.cudnn.benchmark = cuda
    with tempfile.TemporaryDirectory(prefix="bm_gpu_train_") as tmp:
        rows = measure(args, Path(tmp), device)
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"device: {name}; world {args.world}; {args.steps} steps per run; {args.configs} configs")
    print(table(rows, not cuda))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(json.dumps({"device": name, "rows": rows}))
    return 0


def measure(args, scratch: Path, device: torch.device) -> list[dict]:
    """Build the world when needed (``args.world`` default: inside ``scratch``), then one row per method and
    precision; run folders go to ``scratch`` (removed afterwards)."""
    world = args.world = args.world or scratch / f"world_{args.preset}"
    if not (world / "manifest.csv").is_file():
        from voiceface.sim import build_world

        t = time.perf_counter()
        print(f"building the {args.preset} world in {world} ...", file=sys.stderr)
        build_world(world, args.preset, seed=0, workers=args.build_workers, progress=False)
        print(f"built in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    rows = []
    for method in args.methods:
        for precision in args.precisions:
            print(f"{method} {precision} ...", file=sys.stderr)
            rows.append(run_one(method, precision, args, world, scratch, device))
    return rows


if __name__ == "__main__":
    sys.exit(main())
