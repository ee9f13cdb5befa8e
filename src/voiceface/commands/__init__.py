"""CLI subcommands, one module each with ``register(subparsers)``; ``voiceface.cli`` adds them in this order."""
from . import demo, evaluate, train

COMMANDS = [demo, train, evaluate]
