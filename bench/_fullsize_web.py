"""``bench/fullsize.py --web``: the scan through the web API and its runners, as the page calls them.

Starts ``ml4paleo serve`` (waitress + runner processes) on a data folder of its own with the work
folder as its import root, registers the folder of TIFF slices where it lies (``/api/job/import``,
converted in place), then times: the first XY
slice and 10 switches (at the level the page's stage shows), an XZ plane, strokes on two slices
each followed by its first draft, the full model, previews of unseen XY and XZ planes by it (on the
level nearest the stage's resolution, as the page asks first, and at full resolution), the segmentation
(``start`` reusing the full model: queued -> done by the server's task events, voxels per second of wall and per
CPU second of the process tree, each process's CPU seconds) and when each download was ready after it. The peak
RSS is summed over the server's process tree (sampled every 0.2 s), overall and per phase, with each process's
own peak in the phase (server, runner <kind>, their children); every sample (seconds, the bench's step, RSS of
each process in MB) goes to ``<workdir>/rss-trace.txt``, to tell which step of which process makes a peak. ``--segment-only``
skips the browsing, drafts and previews; ``--cli-compare`` then runs ``ml4paleo segment`` on the job's volume and
model as a process of its own, under the same load.
"""

from __future__ import annotations

import base64
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

STAGE = 672
"""Device pixels of the stage's height (the annotation page at 1400 x 900, device pixel ratio 1):
the levels the page asks for follow it."""


class TreeRss(threading.Thread):
    """Peak RSS summed over a process and its children; ``mark()`` starts a new phase."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.peak, self.phase, self.done = psutil.Process(pid), 0, 0, threading.Event()
        self.each: dict[str, int] = {}
        """Peak RSS of each process (server, runner <kind>) in the phase."""
        self.trace = None
        """An open text file: every sample's seconds, step and RSS per process (MB) go there."""
        self.step, self.t0 = "start", time.perf_counter()

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            sizes: dict[str, int] = {}
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    name = _name(p)
                    sizes[name] = sizes.get(name, 0) + p.memory_info().rss
                except psutil.Error:
                    pass
            total = sum(sizes.values())
            self.peak, self.phase = max(self.peak, total), max(self.phase, total)
            for name, size in sizes.items():
                self.each[name] = max(self.each.get(name, 0), size)
            if self.trace is not None:
                self.trace.write(f"{time.perf_counter() - self.t0:.1f} {self.step} total={total >> 20} "
                                 + " ".join(f"{k.replace(' ', '_')}={v >> 20}" for k, v in sizes.items()) + "\n")
                self.trace.flush()
            self.done.wait(0.2)

    def cpu(self) -> float:
        """CPU seconds of the process tree so far (the children alive now)."""
        import psutil

        total = 0.0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                c = p.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return total

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds so far of each process of the tree: ``runner <kind>`` or ``server``."""
        import psutil

        out: dict[str, float] = {}
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                c = p.cpu_times()
                name = _name(p)
                out[name] = out.get(name, 0.0) + c.user + c.system
            except psutil.Error:
                pass
        return out

    def mark(self) -> int:
        phase, self.phase = self.phase, 0
        return phase

    def mark_each(self) -> str:
        """The phase's peak of each process (MB), then a new phase."""
        each, self.each = self.each, {}
        return ", ".join(f"{k} {v >> 20}" for k, v in sorted(each.items()))


def _name(p) -> str:
    """``runner <kind>`` for a runner process, else ``server`` (or the process's name)."""
    words = p.cmdline()
    if "runner" in words[-2:-1]:
        return " ".join(words[-2:])
    if "serve" in words:
        return "server"
    parent = p.parent()
    return f"{_name(parent)} > {p.name()}" if parent is not None else p.name()


def _level(n: int) -> int:
    """The image level the page asks for (at most one image pixel per screen pixel)."""
    return max(0, int(math.floor(math.log2(n / (STAGE * 0.96)) + 1e-9)))


def _overlay_level(n: int) -> int:
    """The overlay's first level (the nearest to the screen's resolution)."""
    return max(0, round(math.log2(n / (STAGE * 0.96))))


EXPORTS = ("png", "seg-nrrd", "nifti")
"""The URL names of the downloads written when a segmentation finishes (``ml4paleo.enums.SEGMENTATION_EXPORTS``)."""


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def segment_and_exports(call, http, url: str, job: str, rss: TreeRss, say, voxels: int) -> None:
    """``start`` with the model just trained (reused: the segmentation alone), timed from the
    request to the job's ``segmented``, then each download's readiness after it; and the
    server's own timeline of the tasks (queued, claimed, done) from the job's events."""
    c, each = rss.cpu(), rss.cpu_by_process()
    queued = call("POST", f"/api/job/{job}/start", (202,)).json()
    seg = queued["seg_id"]
    while (doc := call("GET", f"/api/job/{job}/status").json())["status"] not in ("segmented", "meshing_queued",
                                                                                  "meshing", "meshed"):
        if doc["status"] == "error":
            raise SystemExit(f"segmentation failed: {doc['error']}")
        time.sleep(1.0)  # polled as the page does (every 2 s), not so often that the answers cost CPU
    cpu, after = rss.cpu() - c, rss.cpu_by_process()
    marks, kinds = _timeline(call, job)
    start = max(i for i, k in kinds.items() if k == "start")
    wall = marks[start]["done"] - marks[start]["queued"]  # the server's own times: no polling in them
    what = "segmentation (model reused)" if queued.get("model_reused") else "train + segment"
    say(f"{what}, queued -> done", f"{wall:.1f} s, {voxels / wall / 1e6:.2f} M voxels/s; CPU {cpu:.1f} s (all "
        f"processes), {voxels / max(cpu, 1e-9) / 1e6:.2f} M voxels per CPU s")
    say("  CPU s by process", ", ".join(f"{name} {after[name] - each.get(name, 0.0):.1f}"
                                        for name in after))
    t, ready = time.perf_counter(), {}
    while len(ready) < len(EXPORTS):
        for fmt in EXPORTS:
            if fmt not in ready:
                with http.get(url + f"/api/job/{job}/segmentation/{seg}/download/{fmt}", timeout=900, stream=True) as r:
                    if r.status_code == 200:
                        ready[fmt] = time.perf_counter() - t
                    elif "failed" in r.text:
                        raise SystemExit(f"the {fmt} export failed: {r.text[:300]}")
        if time.perf_counter() - t > 1800:
            raise SystemExit(f"exports not ready within 30 minutes: {sorted(set(EXPORTS) - set(ready))} missing")
        time.sleep(0.5)
    say("exports ready after the segmentation", ", ".join(f"{f} {s:.1f} s" for f, s in ready.items()))
    marks, kinds = _timeline(call, job)
    t0 = marks[start]["queued"]
    for i in sorted(marks):
        if i >= start:
            say(f"  task {i} ({kinds[i]})", "  ".join(f"{k} +{v - t0:.1f} s" for k, v in marks[i].items()))


def _timeline(call, job: str) -> tuple[dict[int, dict[str, float]], dict[int, str]]:
    """When each task of the job was queued, claimed and done (the server's clock, from its
    events), and each task's kind."""
    doc = call("GET", f"/api/job/{job}/events").json()
    kinds = {t["task_id"]: t["kind"] for t in doc["tasks"]}
    marks: dict[int, dict[str, float]] = {}
    for e in doc["events"]:
        if e["task_id"] in kinds and e["kind"] in ("task:queued", "task:claimed", "task:done"):
            marks.setdefault(e["task_id"], {}).setdefault(e["kind"].split(":")[1], _at(e["at"]))
    return marks, kinds


def cli_segment(data: Path, job: str, voxels: int, say, work: Path) -> None:
    """``ml4paleo segment`` as its own process on the job's volume and newest model, for the
    web path's comparison under the same load."""
    from fullsize import run_step

    folder = data / "jobs" / job
    model = max((folder / "models").iterdir(), key=lambda m: (m / "metadata.json").stat().st_mtime)
    out = work / "cli-seg.ome.zarr"
    r = run_step("segment", [str(Path(sys.executable).parent / "ml4paleo"), "segment", str(folder / "volume.ome.zarr"),
                             str(model), str(out), "--overwrite"], work / "cli-segment.log")
    say("CLI segment, same volume and model", f"{r['seconds']:.1f} s, {voxels / r['seconds'] / 1e6:.2f} M voxels/s; "
        f"CPU {r['cpu_s']:.1f} s, {voxels / max(r['cpu_s'], 1e-9) / 1e6:.2f} M voxels per CPU s; "
        f"peak RSS {r['peak_total_mb']:.0f} MB")


def run_web(work: Path, n: int, slices: Path, masks: dict[int, np.ndarray], segment: bool = True,
            depth: int | None = None, interactive: bool = True, cli_compare: bool = False) -> int:
    import requests

    from ml4paleo.io.png import encode_png

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = work / "web-data"
    log = open(work / "serve.log", "wb")
    exe = str(Path(sys.executable).parent / "ml4paleo")
    env = {**os.environ, "ML4PALEO_IMPORT_ROOTS": str(work.resolve())}
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--data", str(data)], stdout=log, env=env,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    rss = TreeRss(proc.pid)
    rss.trace = open(work / "rss-trace.txt", "w")
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

    def timed_cpu(fn):
        c, t = rss.cpu(), time.perf_counter()
        fn()
        return time.perf_counter() - t, rss.cpu() - c

    def say(name: str, value: str) -> None:
        print(f"{name:<44} {value}", flush=True)

    try:
        for _ in range(300):
            try:
                if http.get(url + "/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    raise SystemExit(f"ml4paleo serve exited with {proc.returncode}; see {work / 'serve.log'}")
                time.sleep(0.2)
        t = time.perf_counter()
        job = call("POST", "/api/job/import", (202,), json={"path": str(slices.resolve()), "name": f"fullsize {n}",
                                                             "voxel_size": [1, 1, 1], "unit": "um"}).json()["job_id"]
        while (doc := call("GET", f"/api/job/{job}/status").json())["status"] != "converted":
            if doc["status"] == "error":
                raise SystemExit(f"conversion failed: {doc['error']}")
            time.sleep(0.1)
        say("register from disk + conversion", f"{time.perf_counter() - t:.1f} s")
        depth = n if depth is None else depth
        if interactive:
            level = _level(n)
            rss.mark()
            z0 = depth // 3
            first, _ = timed(lambda: call("GET", f"/api/annotate/{job}/images/next?z={z0}&level={level}"))
            switches = [timed(lambda z=z: call("GET", f"/api/annotate/{job}/images/next?z={z}&level={level}"))[0]
                        for z in range(z0 + 7, z0 + 77, 7) if z < depth]
            xz, _ = timed(lambda: call("GET", f"/api/annotate/{job}/images/next?axis=y&index={n // 2}&level={level}"))
            say(f"first XY slice (level {level})", f"{first:.3f} s")
            say("10 XY switches p50 / max", f"{statistics.median(switches):.3f} / {max(switches):.3f} s")
            say("XZ plane", f"{xz:.3f} s")
            say("peak RSS, all processes, while browsing", f"{rss.mark() / 2**20:.0f} MB" + f" ({rss.mark_each()})")

        if not interactive:  # the strokes only: no drafts
            for z, mask in masks.items():
                call("POST", f"/api/annotate/{job}/data/submit",
                     json={"z": z, "mask": base64.b64encode(encode_png(mask)).decode()})
        else:
            drafts = []
            rss.step = "painting"
            for z, mask in masks.items():  # strokes, then the first draft on the newly painted slice
                t, c = time.perf_counter(), rss.cpu()
                call("POST", f"/api/annotate/{job}/data/submit", json={"z": z, "mask": base64.b64encode(encode_png(mask)).decode()})
                rev = call("POST", f"/api/annotate/{job}/draft", (202,),
                           json={"z": z, "level": _overlay_level(n)}).json()["annotation_rev"]
                while True:
                    d = call("GET", f"/api/annotate/{job}/draft?z={z}").json()
                    if d["ready"] and d["ready"]["annotation_rev"] >= rev and d["ready"].get("prediction"):
                        break
                    if d["error"] and not d["pending"]:
                        raise SystemExit(f"draft failed: {d['error']}")
                    time.sleep(0.05)
                drafts.append((time.perf_counter() - t, rss.cpu() - c))
            say("first draft on a newly painted slice", "  ".join(f"{w:.2f} s (CPU {c:.2f} s)" for w, c in drafts))
            say("peak RSS, all processes, while painting", f"{rss.mark() / 2**20:.0f} MB" + f" ({rss.mark_each()})")
        t = time.perf_counter()  # the full model, as the page queues it when painting pauses
        rss.step = "retrain"
        model = call("POST", f"/api/job/{job}/retrain", (202,)).json()["model_id"]
        while not any(m["model_id"] == model and m["status"] == "ready"
                      for m in call("GET", f"/api/job/{job}/status").json()["models"]):
            time.sleep(0.2)
        say("full model (retrain, the default method choice)", f"{time.perf_counter() - t:.1f} s")
        if interactive:
            unseen = {"z": [depth // 5, 2 * depth // 5 + 3, 4 * depth // 5], "y": [n // 5, n // 2 + 5, 4 * n // 5]}
            for lv, name in ((_overlay_level(n), "view level"), (0, "full resolution")):
                for axis, plane in (("z", "XY"), ("y", "XZ")):
                    rss.step = f"preview-{plane}-{lv}"
                    runs = [timed_cpu(lambda i=i: call("POST", f"/api/annotate/{job}/data/predict",
                                                       json={"axis": axis, "index": i, "level": lv, "view": "bench"}))
                            for i in unseen[axis]]
                    say(f"preview of an unseen {plane} plane, {name} ({lv})",
                        f"p50 {statistics.median(w for w, _ in runs):.2f} s, CPU p50 "
                        f"{statistics.median(c for _, c in runs):.2f} s (" + ", ".join(f"{w:.2f}" for w, _ in runs) + ")")
                unseen = {k: [i + 2 for i in v] for k, v in unseen.items()}
            say("peak RSS, all processes, training and previews", f"{rss.mark() / 2**20:.0f} MB" + f" ({rss.mark_each()})")

        if not segment:
            print(f"load: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            return 0
        segment_and_exports(call, http, url, job, rss, say, n * n * depth)
        say("peak RSS, all processes, whole run", f"{rss.peak / 2**20:.0f} MB")
        print(f"load: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        if cli_compare:
            cli_segment(data, job, n * n * depth, say, work)
    finally:
        rss.done.set()
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its runners
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    return 0
