"""The simulated audiovisual world: people with covariates, rendered faces (stills and clips), synthesised voices,
and the ground truth of which facial measurements the voice carries (``world.json``).

``build_world(out, preset, seed, coupling, workers)`` writes a world folder; ``load_world(path)`` reads it.
"""
from .presets import PRESETS, Preset, get_preset
from .world import World, build_world, load_world

__all__ = ["PRESETS", "Preset", "World", "build_world", "get_preset", "load_world"]
