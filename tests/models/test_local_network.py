"""A U-Net whose background corrections act where they were painted: the near network within reach, a share of the far one beyond."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from ml4paleo.models import LocalNetwork, load_model, region_labels, save_model  # noqa: E402
from ml4paleo.models.unet import UNetSegmenter  # noqa: E402

QUICK = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch": 32}


@pytest.fixture(scope="module")
def two_networks():
    """A noise volume and two barely trained networks taught opposite answers (far: bright is fossil)."""
    vol = np.random.default_rng(0).integers(0, 4000, size=(12, 40, 40)).astype(np.uint16)
    bright = np.where(vol[6] > 2000, 2, 1).astype(np.uint8)
    far = UNetSegmenter(n_jobs=1, **QUICK).fit(vol, {6: bright}, device="cpu")
    near = UNetSegmenter(n_jobs=1, **QUICK).fit(vol, {6: 3 - bright}, device="cpu", seed=1)
    return vol, far, near


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_near_within_reach_a_share_of_far_beyond_and_the_same_after_saving(two_networks, share, tmp_path):
    vol, far, near = two_networks
    mask = np.zeros((40, 40), np.uint8)
    mask[20, 20] = 1
    model = LocalNetwork(far, near, [(0, 6, mask)], (1.0, 1.0, 1.0), radius=4.0, far_share=share)
    p = model.predict_region(vol, (0, 0, 0), vol.shape)
    p_far, p_near = far.predict_region(vol, (0, 0, 0), vol.shape), near.predict_region(vol, (0, 0, 0), vol.shape)
    assert np.allclose(p[6, 19:22, 19:22], p_near[6, 19:22, 19:22], atol=1e-6)  # within half the reach
    assert np.allclose(p[:2], share * p_far[:2] + (1 - share) * p_near[:2], atol=1e-6)  # beyond
    assert np.array_equal(region_labels(model, vol, (0, 0, 0), vol.shape), np.argmax(p, -1))
    save_model(model, tmp_path / "m", metadata={"method": "unet"})
    loaded = load_model(tmp_path / "m")
    assert loaded.kind == "local-network" and loaded.feature_settings is None and loaded.far_share == share
    assert np.allclose(loaded.predict_region(vol, (0, 0, 0), vol.shape), p, atol=1e-5)
