"""A U-Net trained by the web app's runner (``ML4PALEO_TRAIN_METHOD=unet`` with a fixed,
deterministic ``ML4PALEO_UNET_EPOCHS``) and its report from the real server: the training curve
the models page draws, per epoch for the final fit and for every leave-one-slice-out fold; and
the models page in a real Chromium drawing it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from apiserver import converted_job, png_b64, start_server, stop_server

pytestmark = pytest.mark.slow
EPOCHS = 2


@pytest.fixture(scope="module")
def unet_server(tmp_path_factory):
    pytest.importorskip("torch")
    srv = start_server(tmp_path_factory.mktemp("data"), runners="convert=1,segment=1,mesh=0",
                       env={"ML4PALEO_TRAIN_METHOD": "unet", "ML4PALEO_UNET_EPOCHS": str(EPOCHS)})
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def unet_job(unet_server) -> tuple[str, str]:
    """A job whose model is a U-Net trained on 3 painted slices: (job_id, model_id)."""
    srv = unet_server
    rng = np.random.default_rng(2)
    volume = rng.normal(1000, 40, (8, 32, 32)).astype(np.uint16)
    volume[2:7, 8:24, 8:24] += 3000
    job_id = converted_job(srv, volume, "unet curve")
    for z in (2, 4, 6):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    model_id = srv.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"]
    srv.wait(job_id, {"trained"})
    return job_id, model_id


def test_model_report_carries_the_unet_training_curve(unet_server, unet_job):
    srv, (job_id, model_id) = unet_server, unet_job
    report = srv.json("GET", f"/api/job/{job_id}/models/{model_id}")
    assert report["method"] == "unet" and report["kind"] == "unet"
    curve = report["training_curve"]
    assert [e["epoch"] for e in curve["epochs"]] == list(range(1, EPOCHS + 1))  # the fixed budget, not the clock
    # the epoch kept: the last, or an earlier one that fits the painted voxels clearly better (unet.SETTLE_MARGIN)
    assert all(e["train_loss"] > 0 for e in curve["epochs"]) and 1 <= curve["best_epochs"] <= EPOCHS
    assert sorted(z for f in curve["folds"] for z in f["heldout"]) == [2, 4, 6]  # one fold per painted slice
    for fold in curve["folds"]:
        assert [e["epoch"] for e in fold["curve"]] == list(range(1, EPOCHS + 1))
        assert all(0 <= e["heldout_dice"] <= 1 and e["heldout_loss"] >= 0 for e in fold["curve"])


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (make test installs it)")
def test_models_page_draws_the_training_curve(unet_server, unet_job):
    from playwright.sync_api import sync_playwright

    job_id, _ = unet_job
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(base_url=unet_server.url)
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"/job/{job_id}/models")
            page.locator("#curve:not([hidden]) #curve-chart polyline.train-loss").wait_for(timeout=60_000)
            assert page.locator("#curve-chart polyline.fold-dice").count() == 3  # one line per fold
            assert page.locator("#curve-chart polyline.heldout-dice").count() == 1  # and their mean
            points = page.locator("#curve-chart polyline.train-loss").get_attribute("points").split()
            assert len(points) == EPOCHS
            assert f"{EPOCHS} epoch(s), 3 fold(s)" in page.locator("#curve-summary").inner_text()
        finally:
            browser.close()
    assert not errors, errors
