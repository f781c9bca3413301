"""Painting on the XZ and YZ planes, and the display window on raw values, against a real
server: round trips of plane annotations, bad indices, the seed's XY routes unchanged,
training and prediction from planes, the volume's histogram and re-rendered windows."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from apiserver import converted_job, png_b64

SHAPE = (10, 24, 32)  # z, y, x: every axis a different length, so a swapped axis shows


def _png(data: bytes | str) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    return np.asarray(Image.open(io.BytesIO(raw)))


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """Matrix at 30000 and a block of 'bone' only 40 grey values brighter (16-bit), plus a few
    hot voxels at 60000 that stretch the full range."""
    rng = np.random.default_rng(3)
    vol = (30000 + rng.integers(-3, 4, SHAPE)).astype(np.uint16)
    vol[2:8, 6:18, 8:24] += 40
    vol[0, 0, :4] = 60000
    return vol


@pytest.fixture(scope="module")
def job(server, volume) -> str:
    return converted_job(server, volume, "planes")


def _mask(rows: int, cols: int) -> np.ndarray:
    mask = np.zeros((rows, cols), np.uint8)
    mask[:, : cols // 2] = 1
    mask[4, 10:14] = 2
    return mask


def test_a_plane_annotation_round_trips(server, job):
    z, y, x = SHAPE
    nxt = server.json("GET", f"/api/annotate/{job}/images/next", params={"axis": "y", "index": 5})
    assert (nxt["axis"], nxt["index"], nxt["z"], nxt["depth"], nxt["shape"]) == ("y", 5, None, y, [z, x])
    assert _png(nxt["image"]).shape == (z, x)
    suggested = server.json("GET", f"/api/annotate/{job}/images/next", params={"axis": "x"})
    assert suggested["axis"] == "x" and 0 <= suggested["index"] < x and suggested["shape"] == [z, y]

    y_mask, x_mask = _mask(z, x), _mask(z, y)
    out = server.json("POST", f"/api/annotate/{job}/data/submit",
                      json={"axis": "y", "index": 5, "mask": png_b64(y_mask)})
    assert (out["axis"], out["index"], out["z"], out["values"]) == ("y", 5, None, [1, 2])
    assert out["labeled_voxels"] == int(np.count_nonzero(y_mask))
    server.json("POST", f"/api/annotate/{job}/data/submit", json={"axis": "x", "index": 7, "mask": png_b64(x_mask)})
    listed = server.json("GET", f"/api/annotate/{job}/annotations")["annotations"]
    assert [(a["axis"], a["index"], a["z"]) for a in listed] == [("y", 5, None), ("x", 7, None)]
    assert server.status(job)["plane_annotations"] == [{"axis": "y", "index": 5}, {"axis": "x", "index": 7}]
    np.testing.assert_array_equal(_png(server.get(f"/api/annotate/{job}/annotations/y/5").content), y_mask)
    np.testing.assert_array_equal(_png(server.get(f"/api/annotate/{job}/annotations/x/7").content), x_mask)
    assert server.get(f"/api/annotate/{job}/annotations/y/7").status_code == 404  # x 7 is not y 7
    assert server.get(f"/api/annotate/{job}/annotations/7").status_code == 404  # nor z 7
    # the CLI's names: the job's annotation folder trains with `ml4paleo train` as it is
    names = sorted(p.name for p in (server.data / "jobs" / job / "annotations").iterdir())
    assert names == ["x_0007.png", "y_0005.png"]

    # an all-zero mask removes it, as on z slices; DELETE too
    gone = server.json("POST", f"/api/annotate/{job}/data/submit",
                       json={"axis": "x", "index": 7, "mask": png_b64(np.zeros((z, y), np.uint8))})
    assert gone["labeled_voxels"] == 0
    assert server.json("DELETE", f"/api/annotate/{job}/annotations/y/5") == {"axis": "y", "index": 5, "z": None,
                                                                          "deleted": True}
    assert server.json("GET", f"/api/annotate/{job}/annotations")["annotations"] == []
    assert server.get(f"/api/annotate/{job}/annotations/y/5").status_code == 404


def test_bad_planes_and_indices_are_4xx_with_the_reason(server, job):
    z, y, x = SHAPE
    submit = f"/api/annotate/{job}/data/submit"
    cases = {
        "y must be a slice index from 0 to 23": {"axis": "y", "index": y, "mask": png_b64(_mask(z, x))},
        "x must be a slice index from 0 to 31": {"axis": "x", "index": 99, "mask": png_b64(_mask(z, y))},
        "index must be at least 0": {"axis": "y", "index": -1, "mask": png_b64(_mask(z, x))},
        "axis must be z, y or x": {"axis": "w", "index": 1, "mask": png_b64(_mask(z, x))},
        "index is required": {"axis": "y", "z": 3, "mask": png_b64(_mask(z, x))},
        "slices are": {"axis": "y", "index": 2, "mask": png_b64(_mask(y, x))},  # an XY-shaped mask on an XZ plane
    }
    for reason, body in cases.items():
        r = server.post(submit, json=body)
        assert r.status_code == 400 and reason in r.json()["error"], (reason, r.text)
    for path in (f"annotations/y/{y}", "annotations/q/1"):
        r = server.get(f"/api/annotate/{job}/{path}")
        assert r.status_code == 400 and "error" in r.json(), path
    r = server.get(f"/api/annotate/{job}/images/next", params={"axis": "x", "index": x})
    assert r.status_code == 400 and "x must be" in r.json()["error"]
    r = server.post(f"/api/annotate/{job}/data/predict", json={"axis": "y", "index": 1000})
    assert r.status_code == 400
    assert server.json("GET", f"/api/annotate/{job}/annotations")["annotations"] == []  # nothing was stored


def test_the_seed_xy_routes_keep_their_meaning(server, job):
    z, y, x = SHAPE
    nxt = server.json("GET", f"/api/annotate/{job}/images/next", params={"z": 3})
    assert (nxt["z"], nxt["axis"], nxt["index"], nxt["shape"], nxt["depth"]) == (3, "z", 3, [y, x], z)
    mask = _mask(y, x)
    out = server.json("POST", f"/api/annotate/{job}/data/submit", json={"z": 3, "mask": png_b64(mask)})
    assert (out["z"], out["labeled_voxels"], out["values"]) == (3, int(np.count_nonzero(mask)), [1, 2])
    assert server.status(job)["annotations"] == [3]
    np.testing.assert_array_equal(_png(server.get(f"/api/annotate/{job}/annotations/3").content), mask)
    assert server.json("GET", f"/api/annotate/{job}/annotations")["annotations"][0]["z"] == 3
    r = server.post(f"/api/annotate/{job}/data/submit", json={"z": z, "mask": png_b64(mask)})
    assert r.status_code == 400 and "z must be a slice index from 0 to 9" in r.json()["error"]
    assert server.json("DELETE", f"/api/annotate/{job}/annotations/3")["deleted"] is True
    assert server.status(job)["annotations"] == []


def test_a_model_trains_from_planes_alone_and_predicts_any_plane(server, volume):
    pytest.importorskip("ml4paleo.pipelines.train")
    job = converted_job(server, volume, "planes-train")
    truth = np.where(volume > 30020, 2, 1).astype(np.uint8)
    submit = f"/api/annotate/{job}/data/submit"
    server.json("POST", submit, json={"axis": "y", "index": 12, "mask": png_b64(truth[:, 12, :])})
    server.json("POST", submit, json={"axis": "x", "index": 10, "mask": png_b64(truth[:, :, 10])})
    model_id = server.json("POST", f"/api/job/{job}/retrain", 202)["model_id"]
    doc = server.wait(job, {"trained"})
    model = next(m for m in doc["models"] if m["model_id"] == model_id)
    assert model["status"] == "ready" and model["n_slices"] == 2
    for axis, index, plane in (("y", 9, truth[:, 9, :]), ("x", 20, truth[:, :, 20]), ("z", 4, truth[4])):
        pred = server.json("POST", f"/api/annotate/{job}/data/predict", json={"axis": axis, "index": index})
        classes = _png(pred["prediction"])
        assert classes.shape == plane.shape and np.mean(classes == plane - 1) > 0.9, axis


def test_the_histogram_and_a_window_on_raw_values(server, job, volume):
    cache = server.data / "jobs" / job / "histogram.json"
    assert cache.is_file()  # counted by the conversion, kept beside the volume
    hist = server.json("GET", f"/api/job/{job}/histogram")
    assert hist["dtype"] == "uint16" and hist["voxels"] == volume.size and sum(hist["counts"]) == volume.size
    assert (hist["min"], hist["max"]) == (float(volume.min()), float(volume.max()))
    assert len(hist["edges"]) == len(hist["counts"]) + 1 and len(hist["counts"]) <= 2048
    assert hist["presets"]["full"] == [float(volume.min()), float(volume.max())]
    assert hist["presets"]["auto"] == server.status(job)["window"]
    assert server.json("GET", f"/api/job/{job}/histogram") == hist
    cache.unlink()  # a volume converted before histograms were kept: counted on the first request
    assert server.json("GET", f"/api/job/{job}/histogram") == hist and cache.is_file()
    cache.write_text('{"stamp": 1, "counts": [5], "edges": [0, 1]}')  # the histogram of an older volume
    assert server.json("GET", f"/api/job/{job}/histogram") == hist

    def rendered(window: str) -> np.ndarray:
        r = server.get(f"/api/job/{job}/slice/z/4.png", params={"window": window})
        assert r.status_code == 200
        return _png(r.content).astype(int)

    full = rendered(f"{hist['min']},{hist['max']}")
    narrow = rendered("29990,30050")
    bone, matrix = (slice(6, 18), slice(8, 24)), (slice(20, 24), slice(0, 8))
    assert abs(full[bone].mean() - full[matrix].mean()) < 1  # a few dozen of 65536: one display level
    assert narrow[bone].mean() - narrow[matrix].mean() > 120  # the raw window tells them apart
    nxt = server.json("GET", f"/api/annotate/{job}/images/next", params={"z": 4, "window": "29990,30050"})
    np.testing.assert_array_equal(_png(nxt["image"]), narrow.astype(np.uint8))
    assert nxt["window"] == [29990.0, 30050.0]
    r = server.get(f"/api/annotate/{job}/images/next", params={"z": 4, "window": "9,1"})
    assert r.status_code == 400 and "window" in r.json()["error"]


def test_the_histogram_waits_for_the_conversion(server):
    job_id = server.json("POST", "/api/job/new", 201, json={"name": "empty"})["job_id"]
    r = server.get(f"/api/job/{job_id}/histogram")
    assert r.status_code == 409 and "not converted" in r.json()["error"]


def test_strokes_are_completed_into_a_suggested_mask(server, job, volume):
    z, y, x = SHAPE
    strokes = np.zeros((y, x), np.uint8)
    strokes[12, 10:22] = 2  # a stroke inside the bright block of slice 4
    strokes[21, 2:30] = 1  # and one in the matrix below it
    body = {"z": 4, "mask": png_b64(strokes)}
    out = server.json("POST", f"/api/annotate/{job}/data/complete", json=body)
    completed = _png(out["completed"])
    assert completed.shape == (y, x) and set(np.unique(completed)) <= {0, 1, 2}
    assert np.all(completed[strokes > 0] == strokes[strokes > 0])
    truth = np.where(volume[4] > 30020, 2, 1)
    labeled = completed > 0
    assert labeled.mean() > 0.5 and np.mean(completed[labeled] == truth[labeled]) > 0.9  # offers only what it can support
    # an XZ plane, from its saved strokes
    plane = np.zeros((z, x), np.uint8)
    plane[5, 10:20], plane[9, :] = 2, 1
    server.json("POST", f"/api/annotate/{job}/data/submit", json={"axis": "y", "index": 10, "mask": png_b64(plane)})
    out = server.json("POST", f"/api/annotate/{job}/data/complete", json={"axis": "y", "index": 10})
    assert out["axis"] == "y" and _png(out["completed"]).shape == (z, x)
    server.json("DELETE", f"/api/annotate/{job}/annotations/y/10")
    one_class = np.zeros((y, x), np.uint8)
    one_class[3, 3:9] = 1
    r = server.post(f"/api/annotate/{job}/data/complete", json={"z": 4, "mask": png_b64(one_class)})
    assert r.status_code == 400 and "two classes" in r.json()["error"]
    r = server.post(f"/api/annotate/{job}/data/complete", json={"z": 5})
    assert r.status_code == 404 and "no annotation" in r.json()["error"]


def test_the_annotations_download_holds_planes_of_every_axis(server, job):
    """XY, XZ and YZ annotations in one zip, under the names the CLI trains from (``3.png``,
    ``y_0005.png``, ``x_0007.png``): int and (axis, index) keys once made this a 500."""
    import zipfile

    z, y, x = SHAPE
    masks = {("z", 3): _mask(y, x), ("y", 5): _mask(z, x), ("x", 7): _mask(z, y)}
    for (axis, index), mask in masks.items():
        server.json("POST", f"/api/annotate/{job}/data/submit", json={"axis": axis, "index": index,
                                                                      "mask": png_b64(mask)})
    try:
        r = server.get(f"/api/job/{job}/download/annotations")
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text[:300]
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            assert archive.namelist() == ["annotations/3.png", "annotations/y_0005.png", "annotations/x_0007.png"]
            for name, key in zip(archive.namelist(), masks):
                np.testing.assert_array_equal(_png(archive.read(name)), masks[key])
    finally:
        for axis, index in masks:
            server.json("DELETE", f"/api/annotate/{job}/annotations/{axis}/{index}")


def test_a_region_of_a_slice_is_that_part_of_the_whole_image(server, job):
    """``images/region``: what a zoomed-in view shows, equal to that part of ``images/next``."""
    url = f"/api/annotate/{job}/images/region"
    for params, rows, cols in (({"z": 3}, (2, 20), (5, 30)), ({"axis": "y", "index": 7}, (1, 9), (0, 12)),
                               ({"axis": "x", "index": 31}, (4, 10), (3, 24))):
        whole = server.json("GET", f"/api/annotate/{job}/images/next", params={**params, "window": "29990,30050"})
        part = server.json("GET", url, params={**params, "window": "29990,30050",
                                               "region": f"{rows[0]},{cols[0]},{rows[1]},{cols[1]}"})
        assert part["region"] == [rows[0], cols[0], rows[1], cols[1]] and part["level"] == 0
        assert part["shape"] == whole["shape"] and part["image_shape"] == [rows[1] - rows[0], cols[1] - cols[0]]
        assert np.array_equal(_png(part["image"]), _png(whole["image"])[rows[0]:rows[1], cols[0]:cols[1]])
    clipped = server.json("GET", url, params={"z": 3, "region": "-5,-5,100,100"})
    assert clipped["region"] == [0, 0, SHAPE[1], SHAPE[2]]
    for params, word in (({"z": 3, "region": "1,2,3"}, "region"), ({"z": 3, "region": "a,b,c,d"}, "region"),
                         ({"z": 3, "region": "30,0,40,10"}, "region"), ({"z": 3}, "region"),
                         ({"z": 99, "region": "0,0,4,4"}, "z"), ({"axis": "q", "index": 1, "region": "0,0,4,4"}, "axis")):
        r = server.get(url, params=params)
        assert r.status_code == 400 and word in r.json()["error"], (params, r.text)
