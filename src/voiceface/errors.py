"""Errors that carry a one-line, human-readable message.

Library code raises these for bad input (a missing file, corrupt audio, an image without a face, an unknown config
key); ``voiceface.cli`` prints ``str(error)`` on one line and exits with status 2, never a traceback.
"""
from __future__ import annotations

import os


class VoicefaceError(Exception):
    """Base class for every error a user can cause and fix."""


class InputError(VoicefaceError):
    """A file (or other input) that cannot be used; the message names it and the problem.

    Example: ``InputError("clips/a.wav", "no speech found by the VAD")`` prints as
    ``clips/a.wav: no speech found by the VAD``.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class ConfigError(VoicefaceError):
    """A configuration that cannot be used: an unknown key, a value of the wrong type."""


class MissingDependencyError(VoicefaceError):
    """An optional extra (dlib, resemblyzer, nvdiffrast) is needed and not installed."""

    def __init__(self, package: str, extra: str | None, purpose: str, command: str | None = None):
        command = command or f"pip install 'voiceface[{extra}]'"
        super().__init__(f"{purpose} needs the optional package '{package}': {command}")
