"""Integration with the simulated world (slow: builds the tiny world). The tiny world has too few women for a
per-gender 7/1/1/1 split, so these runs use the men only."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    sim = pytest.importorskip("voiceface.sim")
    out = tmp_path_factory.mktemp("sfv_world")
    sim.build_world(out, "tiny", seed=0, coupling=1.0, workers=1, progress=False)
    return out


def test_world_train_evaluate(tiny_world, tmp_path, tiny_overrides):
    from voiceface.methods.sfv.data import from_world
    from voiceface.methods.sfv.evaluate import evaluate
    from voiceface.methods.sfv.train import train

    d = from_world(tiny_world)
    assert d.ams.shape[1] == 94 and d.vertices.shape[0] == d.ams.shape[0] and d.vertex_regions["nose"].any()
    assert set(np.unique(d.truth["m"])) <= {-1, 0, 1} and (d.truth["m"] == 1).any()
    run = train(tiny_world, tmp_path / "run", overrides=[*tiny_overrides, "data.genders=[m]"], progress=False)
    res = evaluate(run)
    assert 0 <= res["sfv_recall"] <= 1 and 0 <= res["sfv_false_positive_rate"] <= 1
    assert res["sfv_vertex_error_nose"] > 0
    from voiceface.methods.sfv.config import FitConfig

    assert res["sfv_linear_fit_lam_m"] in FitConfig().lam_grid          # Eq. 5.7's lambda chosen on validation people
    assert res["sfv_linear_vertex_error_mean_shape"] > 0 and res["sfv_linear_vertex_error_nose_mean_shape"] > 0
    saved = json.loads((run / "results.json").read_text())
    assert saved["sfv_selected_male"] == res["sfv_selected_male"]
