"""CLI subcommands, one module each with ``register(subparsers)``; ``voiceface.cli`` adds them in this order."""
from . import (align, app, demo, evaluate, face3d, features, generate, manifest, prepare, reconstruct, shape, sim, train,
               weights)

COMMANDS = [demo, train, evaluate, features, align, manifest, prepare, generate, weights, face3d, shape, sim, reconstruct,
            app]
