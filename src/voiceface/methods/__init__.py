"""The four methods, each a package of the same shape: config, model, loss, train, evaluate.

Every method package exposes ``METHOD``, a ``Method`` record the CLI and the demo use::

    train(data, out, config_file=None, overrides=(), seed=0) -> Path      # trains into the run folder ``out``
    evaluate(run, data=None) -> dict[str, float]                          # writes RUN/results.json, RUN/report.md
    demo(world, out, seed=0, progress=False) -> DemoSection               # trains + evaluates on the simulated world
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class DemoSection:
    """What a method contributes to the demo report: a title, Markdown text, flat metrics and figure paths."""

    title: str
    markdown: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    train: Callable[..., Path]
    evaluate: Callable[..., dict]
    demo: Callable[..., DemoSection]


def registry() -> dict[str, Method]:
    """name -> Method for every method of this installation, in the order the demo runs them.

    DIMNet runs first: the GAN's evaluation can use its face embedding (Table 3.3).
    """
    from . import cest, dimnet, gan, sfv

    return {m.METHOD.name: m.METHOD for m in (dimnet, gan, cest, sfv)}


def resolve_data(data: str | os.PathLike) -> Path:
    """A manifest CSV, or a folder holding ``manifest.csv`` (a simulated world or a prepared corpus)."""
    from ..errors import InputError

    p = Path(data)
    if p.is_dir():
        p = p / "manifest.csv"
    if not p.is_file():
        raise InputError(data, "no manifest here: give a manifest CSV or a folder with manifest.csv "
                               "(`voiceface sim build` or `voiceface manifest` make one)")
    return p
