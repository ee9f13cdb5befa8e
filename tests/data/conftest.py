"""Fixtures shared by the data tests."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def write_m4a():
    """A writer of silent AAC ``.m4a`` files (the VoxCeleb2 layout): ``write_m4a(path, seconds=0.2)``."""
    import av

    def write(path, seconds: float = 0.2):
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as c:
            s = c.add_stream("aac", rate=16000)
            s.layout = "mono"
            frame = av.AudioFrame.from_ndarray(np.zeros((1, int(16000 * seconds)), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate = 16000
            for pkt in list(s.encode(frame)) + list(s.encode(None)):
                c.mux(pkt)
        return path

    return write
