"""Benchmark the painting loop against a running server: stroke -> draft model -> overlay.

    .venv/bin/python bench/interactive.py                     # 200 x 512^2 uint16, 3 painted slices
    .venv/bin/python bench/interactive.py --depth 60 --size 256 --strokes 6    # quicker

Starts ``ml4paleo serve`` (web + one runner of each kind, default settings: the full filter bank)
on a temporary data folder, uploads a generated scan (blobs and plates in a noisy matrix with a
drift, ``bench/segment.py``'s volume) as one multi-page TIFF, paints 3 slices with strokes, and
times, as the annotation page does it:

- stroke: one more stroke on a painted slice submitted -> draft queued -> draft ready -> overlay
  PNG received (the draft's own prediction of that slice), p50 and p95 over ``--strokes``: before
  any full model (drafts on the whole bank) and after one (drafts on its ranked features); the
  first draft, which featurises the painted slices, is reported apart (cold);
- the same on a plane across the stack (XZ, y = the middle row, painted with strokes too; and,
  after the full model, on a YZ plane): the draft predicts no plane of its own there, so the
  overlay is ``POST .../data/predict`` of that plane once the draft is ready, as the page asks for it;
- with each draft, whether its own suggestions (``GET .../suggestions?draft=1``) were there when
  the draft was ready, and the seconds the draft task spent ranking them;
- preview: an unseen slice predicted by ``POST .../data/predict``, with the draft (whole bank),
  the full model (validated, 16 ranked features) and a draft on those features, p50 and p95
  over ``--previews``;
- the stroke loop again while a second job's whole volume is being segmented by the segment
  runner (the drafts have a queue and a runner of their own).

Goals (issue 11): stroke p50 <= 2 s, preview <= 0.5 s, stroke during a segmentation p50 <= 3 s;
(issue 22) stroke -> overlay p50 <= 1 s on XY, XZ and YZ, the draft's suggestions with it.
Also prints peak RSS (bench + server + runners, and the largest process). Timings include the
machine's load: quote it with them.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment import RssSampler, make_volume  # noqa: E402  (a sibling benchmark's volume and sampler)

from ml4paleo.testing.phantoms import strokes  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """The JSON API of one server."""

    def __init__(self, url: str) -> None:
        import requests

        self.url, self.http = url, requests.Session()

    def json(self, method: str, path: str, expect: int = 200, **kw):
        r = self.http.request(method, self.url + path, timeout=600, **kw)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def wait(self, job_id: str, statuses: set[str], timeout: float = 3600) -> dict:
        deadline = time.monotonic() + timeout
        while (doc := self.json("GET", f"/api/job/{job_id}/status"))["status"] not in statuses:
            if doc["status"] == "error" or time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id}: {doc['status']} {doc.get('error')}")
            time.sleep(0.2)
        return doc


def _png_b64(mask: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def upload(client: Client, volume: np.ndarray, name: str) -> str:
    """A converted job of ``volume``, uploaded as one multi-page TIFF in 8 MiB chunks."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, volume)
    payload = buffer.getvalue()
    job_id = client.json("POST", "/api/job/new", 201, json={"name": name})["job_id"]
    chunk = 8 << 20
    for offset in range(0, len(payload), chunk):
        client.json("POST", "/api/upload", data={"job_id": job_id, "filename": "scan.tif", "offset": offset,
                                                 "total_size": len(payload)},
                    files={"file": ("blob", payload[offset:offset + chunk])})
    client.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    client.wait(job_id, {"converted"})
    return job_id


def stroke_to_overlay(client: Client, job_id: str, z: int, mask: np.ndarray) -> float:
    """Seconds from submitting ``mask`` on slice z to holding the draft's overlay PNG of z."""
    from PIL import Image

    t0 = time.perf_counter()
    client.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": _png_b64(mask)})
    rev = client.json("POST", f"/api/annotate/{job_id}/draft", 202, json={"z": z})["annotation_rev"]
    while True:
        doc = client.json("GET", f"/api/annotate/{job_id}/draft?z={z}")
        ready = doc["ready"]
        if ready and ready["annotation_rev"] >= rev and "prediction" in ready:
            Image.open(io.BytesIO(base64.b64decode(ready["prediction"]))).load()
            elapsed = time.perf_counter() - t0
            _draft_advice(client, job_id, f"draft-{ready['task_id']}")
            return elapsed
        if doc["error"] and not doc["pending"]:
            raise RuntimeError(f"draft failed: {doc['error']}")
        time.sleep(0.02)


ADVICE: list[tuple[bool, float]] = []
"""Per draft: whether its suggestions were there when it was ready, and the seconds the draft task spent ranking."""


def _draft_advice(client: Client, job_id: str, draft_id: str) -> None:
    doc = client.json("GET", f"/api/annotate/{job_id}/suggestions?draft=1")
    ADVICE.append((doc.get("model_id") == draft_id and bool(doc.get("suggestions")), float(doc.get("seconds") or 0.0)))


def plane_stroke_to_overlay(client: Client, job_id: str, axis: str, index: int, mask: np.ndarray) -> tuple[float, float]:
    """Seconds from submitting ``mask`` on the plane ``index`` across ``axis`` (y or x) to holding
    the overlay PNG of that plane (draft queued, ready, then its prediction asked of the route),
    and the seconds of that last request alone."""
    from PIL import Image

    t0 = time.perf_counter()
    client.json("POST", f"/api/annotate/{job_id}/data/submit", json={"axis": axis, "index": index,
                                                                     "mask": _png_b64(mask)})
    rev = client.json("POST", f"/api/annotate/{job_id}/draft", 202, json={})["annotation_rev"]
    while True:
        doc = client.json("GET", f"/api/annotate/{job_id}/draft")
        if doc["ready"] and doc["ready"]["annotation_rev"] >= rev:
            _draft_advice(client, job_id, f"draft-{doc['ready']['task_id']}")
            break
        if doc["error"] and not doc["pending"]:
            raise RuntimeError(f"draft failed: {doc['error']}")
        time.sleep(0.02)
    t1 = time.perf_counter()
    pred = client.json("POST", f"/api/annotate/{job_id}/data/predict", json={"axis": axis, "index": index})
    Image.open(io.BytesIO(base64.b64decode(pred["prediction"]))).load()
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1


def plane_stroke_loop(client: Client, job_id: str, mask: np.ndarray, truth_plane: np.ndarray, index: int, n: int,
                      rng: np.random.Generator, axis: str = "y") -> tuple[list[float], list[float]]:
    """``n`` strokes on the plane ``index`` across ``axis`` (XZ for y: rows z, columns x; YZ for
    x: rows z, columns y), each a short line of one class, timed: stroke to overlay, and the
    prediction request within it."""
    times, predicts = [], []
    rows, cols = truth_plane.shape
    for _ in range(n):
        r = int(rng.integers(2, rows - 2))
        c0 = int(rng.integers(0, max(1, cols - 40)))
        line = truth_plane[r, c0:c0 + 40]
        mask[r, c0:c0 + 40] = np.where(mask[r, c0:c0 + 40] == 0, line.astype(np.uint8) + 1, mask[r, c0:c0 + 40])
        total, predict = plane_stroke_to_overlay(client, job_id, axis, index, mask)
        times.append(total)
        predicts.append(predict)
    return times, predicts


def stroke_loop(client: Client, job_id: str, masks: dict[int, np.ndarray], truth: np.ndarray, n: int,
                rng: np.random.Generator) -> list[float]:
    """``n`` strokes, each a short line of one class on a painted slice (in turn), timed."""
    times = []
    zs = sorted(masks)
    for i in range(n):
        z = zs[i % len(zs)]
        y = int(rng.integers(8, truth.shape[1] - 8))
        x0 = int(rng.integers(0, truth.shape[2] - 40))
        line = truth[z, y, x0:x0 + 40]
        masks[z][y, x0:x0 + 40] = np.where(masks[z][y, x0:x0 + 40] == 0, line.astype(np.uint8) + 1,
                                           masks[z][y, x0:x0 + 40])
        times.append(stroke_to_overlay(client, job_id, z, masks[z]))
    return times


def preview_loop(client: Client, job_id: str, zs: list[int]) -> tuple[list[float], bool]:
    times, drafts = [], set()
    for z in zs:
        t0 = time.perf_counter()
        doc = client.json("POST", f"/api/annotate/{job_id}/data/predict", json={"z": z})
        times.append(time.perf_counter() - t0)
        drafts.add(doc["draft"])
    return times, drafts == {True}


def _p(times: list[float]) -> str:
    return f"p50 {np.percentile(times, 50):.2f} s, p95 {np.percentile(times, 95):.2f} s (n={len(times)})"


class CpuMeter:
    """CPU seconds (user + system) spent by the web server process and its train runners: the
    work behind a stroke or a preview, which does not grow with the machine's load as wall time does."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.server = psutil.Process(pid)

    def __call__(self) -> float:
        import psutil

        total = 0.0
        for proc in [self.server, *self.server.children(recursive=True)]:
            try:
                if proc.pid == self.server.pid or proc.cmdline()[-2:] == ["runner", "train"]:
                    t = proc.cpu_times()
                    total += t.user + t.system
            except psutil.Error:
                continue
        return total

    def per_call(self, calls: int, fn, *args):
        """``fn(*args)`` (which makes ``calls`` timed calls) and the CPU seconds each cost."""
        before = self()
        result = fn(*args)
        return result, (self() - before) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--painted", type=int, default=3)
    parser.add_argument("--strokes", type=int, default=12)
    parser.add_argument("--previews", type=int, default=6)
    parser.add_argument("--skip-segmentation", action="store_true", help="skip the loop during a segmentation")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.depth, args.size, args.size)
    print(f"volume {shape} uint16 ({np.prod(shape) / 1e6:.0f} M voxels), {args.painted} painted slices, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    volume, truth = make_volume(shape, np.uint16)
    truth = truth.astype(np.uint8)

    with tempfile.TemporaryDirectory() as data, RssSampler() as rss:
        port = _free_port()
        log = open(Path(data) / "serve.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "ml4paleo.cli", "serve", "--port", str(port), "--data", data],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = Client(f"http://127.0.0.1:{port}")
        meter = CpuMeter(proc.pid)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.json("GET", "/api/health")
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((Path(data) / "serve.log").read_text()[-3000:])
                    time.sleep(0.2)
            t0 = time.perf_counter()
            job_id = upload(client, volume, "interactive")
            print(f"upload + convert: {time.perf_counter() - t0:.1f} s")
            painted = [int(z) for z in np.linspace(0, args.depth - 1, args.painted + 2)[1:-1]]
            masks = {z: strokes(truth[z], step=32, erode=3, width=2) for z in painted}
            print(f"painted slices {painted}: {int(np.mean([np.count_nonzero(m) for m in masks.values()]))} "
                  f"labelled pixels each")
            for z in painted[:-1]:
                client.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": _png_b64(masks[z])})
            cold = stroke_to_overlay(client, job_id, painted[-1], masks[painted[-1]])
            print(f"first draft (featurises the {args.painted} painted slices): {cold:.2f} s")
            times, cpu = meter.per_call(args.strokes, stroke_loop, client, job_id, masks, truth, args.strokes, rng)
            print(f"stroke -> draft -> overlay: {_p(times)}, {cpu:.2f} CPU s each   (goal p50 <= 1 s)")
            y_mid = args.size // 2
            across = strokes(truth[:, y_mid, :], step=32, erode=3, width=2)
            (times, predicts), cpu = meter.per_call(args.strokes, plane_stroke_loop, client, job_id, across,
                                                    truth[:, y_mid, :], y_mid, args.strokes, rng)
            print(f"stroke -> draft -> overlay on an XZ plane (y {y_mid}): {_p(times)}, {cpu:.2f} CPU s each   "
                  f"(goal p50 <= 1 s); of which the plane's prediction {_p(predicts)}")

            unseen = [z for z in rng.choice(args.depth, args.previews + len(painted), replace=False).tolist()
                      if z not in painted][:args.previews]
            (times, with_draft), cpu = meter.per_call(len(unseen), preview_loop, client, job_id, unseen)
            assert with_draft
            print(f"preview of an unseen slice, draft model (all features): {_p(times)}, {cpu:.2f} CPU s each")
            t0 = time.perf_counter()
            model_id = client.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"]
            client.wait(job_id, {"trained"})
            print(f"full model {model_id} (validation, ranking, method choice): {time.perf_counter() - t0:.1f} s")
            others = [z for z in range(args.depth) if z not in painted and z not in unseen]
            zs = rng.choice(others, args.previews, replace=False).tolist()
            (times, with_draft), cpu = meter.per_call(len(zs), preview_loop, client, job_id, zs)
            assert not with_draft
            print(f"preview of an unseen slice, full model: {_p(times)}, {cpu:.2f} CPU s each   (goal <= 0.5 s)")
            times, cpu = meter.per_call(args.strokes, stroke_loop, client, job_id, masks, truth, args.strokes, rng)
            print(f"stroke -> draft -> overlay, drafts on the full model's ranked features: {_p(times)}, "
                  f"{cpu:.2f} CPU s each   (goal p50 <= 1 s)")
            (times, predicts), cpu = meter.per_call(args.strokes, plane_stroke_loop, client, job_id, across,
                                                    truth[:, y_mid, :], y_mid, args.strokes, rng)
            print(f"stroke -> draft -> overlay on the XZ plane, drafts on the ranked features: {_p(times)}, "
                  f"{cpu:.2f} CPU s each   (goal p50 <= 1 s); of which the plane's prediction {_p(predicts)}")
            x_mid = args.size // 2 + 7
            across_x = strokes(truth[:, :, x_mid], step=32, erode=3, width=2)
            (times, predicts), cpu = meter.per_call(args.strokes, plane_stroke_loop, client, job_id, across_x,
                                                    truth[:, :, x_mid], x_mid, args.strokes, rng, "x")
            print(f"stroke -> draft -> overlay on a YZ plane (x {x_mid}), drafts on the ranked features: {_p(times)}, "
                  f"{cpu:.2f} CPU s each   (goal p50 <= 1 s); of which the plane's prediction {_p(predicts)}")
            zs = rng.choice(others, args.previews, replace=False).tolist()
            (times, with_draft), cpu = meter.per_call(len(zs), preview_loop, client, job_id, zs)
            assert with_draft
            print(f"preview of an unseen slice, draft on the ranked features: {_p(times)}, {cpu:.2f} CPU s each")

            if not args.skip_segmentation:
                other = upload(client, volume, "segmenting")
                z = painted[0]  # one painted slice: no leave-one-slice-out, so its training is short
                client.json("POST", f"/api/annotate/{other}/data/submit", json={"z": z, "mask": _png_b64(masks[z])})
                client.json("POST", f"/api/job/{other}/start", 202)
                client.wait(other, {"segmenting"})
                times, cpu = meter.per_call(args.strokes, stroke_loop, client, job_id, masks, truth, args.strokes, rng)
                still = client.json("GET", f"/api/job/{other}/status")
                print(f"stroke -> draft -> overlay during another job's segmentation: {_p(times)}, {cpu:.2f} CPU s "
                      f"each   (goal p50 <= 3 s)"
                      f"; that job is {still['status']} ({still['progress'] * 100:.0f} %)")
                if still["status"] == "segmenting":
                    client.json("POST", f"/api/job/{other}/cancel")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
    if ADVICE:
        with_draft = sum(ok for ok, _ in ADVICE)
        print(f"drafts whose own suggestions were there when the draft was: {with_draft} of {len(ADVICE)}; ranking "
              f"them in the draft task: {_p([t for _, t in ADVICE])}   (goal: within the same second)")
    print(f"peak RSS: {rss.peak_total / 2**20:.0f} MiB in all (bench + server + runners), "
          f"largest process {rss.peak_worker / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
