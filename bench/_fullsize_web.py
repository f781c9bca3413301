"""``bench/fullsize.py --web``: the scan through the web API and its runners, as the page calls them.

Starts ``ml4paleo serve`` (waitress + runner processes) on a data folder of its own, uploads the
TIFF slices as the page does (``/api/upload``, one request per file), then times: the first XY
slice and 10 switches (at the level a 1000-pixel stage shows), an XZ plane, strokes on two
slices each followed by its first draft, previews of unseen XY and XZ planes by the newest model
(on the view's level, as the page asks first, and at full resolution), the segmentation (train +
segment, voxels/s) and the time from the segmentation to its NIfTI download. The peak RSS is
summed over the server's process tree (sampled every 0.2 s), overall and while painting.
"""

from __future__ import annotations

import base64
import io
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

STAGE = 1000
"""Device pixels of the stage a view fits the slice into (the page's level follows it)."""


class TreeRss(threading.Thread):
    """Peak RSS summed over a process and its children; ``mark()`` starts a new phase."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.peak, self.phase, self.done = psutil.Process(pid), 0, 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            try:
                total = sum(p.memory_info().rss for p in [self.proc, *self.proc.children(recursive=True)])
            except psutil.Error:
                total = 0
            self.peak, self.phase = max(self.peak, total), max(self.phase, total)
            self.done.wait(0.2)

    def mark(self) -> int:
        phase, self.phase = self.phase, 0
        return phase


def _level(n: int) -> int:
    return max(0, int(math.floor(math.log2(n / (STAGE * 0.96)) + 1e-9)))


def run_web(work: Path, n: int, slices: Path, masks: dict[int, np.ndarray]) -> int:
    import requests

    from ml4paleo.io.png import encode_png

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = work / "web-data"
    log = open(work / "serve.log", "wb")
    exe = str(Path(sys.executable).parent / "ml4paleo")
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--data", str(data)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    rss = TreeRss(proc.pid)
    rss.start()
    http = requests.Session()

    def call(method: str, path: str, expect=(200,), **kw):
        r = http.request(method, url + path, timeout=900, **kw)
        if r.status_code not in expect:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    def say(name: str, value: str) -> None:
        print(f"{name:<44} {value}", flush=True)

    try:
        for _ in range(300):
            try:
                if http.get(url + "/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        job = call("POST", "/api/job/new", (201,), json={"name": f"fullsize {n}"}).json()["job_id"]
        t = time.perf_counter()
        files = sorted(slices.glob("*.tif"))
        for f in files:
            payload = f.read_bytes()
            call("POST", "/api/upload", data={"job_id": job, "filename": f"stack/{f.name}", "offset": "0",
                                              "total_size": str(len(payload))}, files={"file": (f.name, payload)})
        upload = time.perf_counter() - t
        call("POST", "/api/job/status/upload-complete", (202,), json={"job_id": job})
        while (doc := call("GET", f"/api/job/{job}/status").json())["status"] != "converted":
            if doc["status"] == "error":
                raise SystemExit(f"conversion failed: {doc['error']}")
            time.sleep(0.1)
        say("upload (one request per slice) + conversion", f"{upload:.1f} s + {time.perf_counter() - t - upload:.1f} s")
        level = _level(n)
        rss.mark()
        z0 = n // 3
        first, _ = timed(lambda: call("GET", f"/api/annotate/{job}/images/next?z={z0}&level={level}"))
        switches = [timed(lambda z=z: call("GET", f"/api/annotate/{job}/images/next?z={z}&level={level}"))[0]
                    for z in range(z0 + 7, z0 + 77, 7)]
        xz, _ = timed(lambda: call("GET", f"/api/annotate/{job}/images/next?axis=y&index={n // 2}&level={level}"))
        say(f"first XY slice (level {level})", f"{first:.3f} s")
        say("10 XY switches p50 / max", f"{statistics.median(switches):.3f} / {max(switches):.3f} s")
        say("XZ plane", f"{xz:.3f} s")
        say("peak RSS, all processes, while browsing", f"{rss.mark() / 2**20:.0f} MB")

        drafts = []
        for z, mask in masks.items():  # strokes, then the first draft on the newly painted slice
            t = time.perf_counter()
            call("POST", f"/api/annotate/{job}/data/submit", json={"z": z, "mask": base64.b64encode(encode_png(mask)).decode()})
            rev = call("POST", f"/api/annotate/{job}/draft", (202,), json={"z": z}).json()["annotation_rev"]
            while True:
                d = call("GET", f"/api/annotate/{job}/draft?z={z}").json()
                if d["ready"] and d["ready"]["annotation_rev"] >= rev and d["ready"].get("prediction"):
                    break
                if d["error"] and not d["pending"]:
                    raise SystemExit(f"draft failed: {d['error']}")
                time.sleep(0.05)
            drafts.append(time.perf_counter() - t)
        say("first draft on a newly painted slice", "  ".join(f"{s:.2f} s" for s in drafts))
        unseen = {"z": [n // 5, 2 * n // 5 + 3, 4 * n // 5], "y": [n // 5, n // 2 + 5, 4 * n // 5]}
        for lv, name in ((level, "view level"), (0, "full resolution")):
            for axis, plane in (("z", "XY"), ("y", "XZ")):
                times = [timed(lambda i=i: call("POST", f"/api/annotate/{job}/data/predict",
                                                json={"axis": axis, "index": i, "level": lv, "view": "bench"}))[0]
                         for i in unseen[axis]]
                say(f"preview of an unseen {plane} plane, {name} ({lv})",
                    f"p50 {statistics.median(times):.2f} s (" + ", ".join(f"{s:.2f}" for s in times) + ")")
            unseen = {k: [i + 2 for i in v] for k, v in unseen.items()}
        say("peak RSS, all processes, while painting", f"{rss.mark() / 2**20:.0f} MB")

        t = time.perf_counter()
        seg = call("POST", f"/api/job/{job}/start", (202,)).json()["seg_id"]
        while (doc := call("GET", f"/api/job/{job}/status").json())["status"] not in ("segmented", "meshing_queued",
                                                                                      "meshing", "meshed"):
            if doc["status"] == "error":
                raise SystemExit(f"segmentation failed: {doc['error']}")
            time.sleep(0.2)
        segmented = time.perf_counter() - t
        say("train + segment", f"{segmented:.1f} s, {n ** 3 / segmented / 1e6:.2f} M voxels/s")
        t = time.perf_counter()
        while http.get(url + f"/api/job/{job}/segmentation/{seg}/download/nifti", timeout=900,
                       stream=True).status_code != 200:
            if time.perf_counter() - t > 1800:
                raise SystemExit("the NIfTI export was not ready within 30 minutes")
            time.sleep(0.5)
        say("NIfTI export ready after the segmentation", f"{time.perf_counter() - t:.1f} s")
        say("peak RSS, all processes, whole run", f"{rss.peak / 2**20:.0f} MB")
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    finally:
        rss.done.set()
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its runners
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    return 0
