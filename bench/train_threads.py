"""Benchmark: where a training's seconds go and how many threads each stage keeps runnable.

    python bench/small_scan.py --sizes 8.7 --painting full --workdir /tmp/ss   # makes the scan and labels
    python bench/train_threads.py /tmp/ss/8.7-full                             # a first training (run 1)
    python bench/train_threads.py /tmp/ss/8.7-full --previous /tmp/ss/8.7-full/model   # a retrain (run 2)

``train_model`` runs once in this process on ``vol.ome.zarr`` and ``labels`` of the folder given
(validation later, as the CLI), each stage timed (wall and CPU seconds of every thread: features
of the painted slices, feature ranking, quick folds, final fit, suggestions) and the process's
threads sampled every 5 ms (state R in ``/proc/self/task/*/stat``; a thread waiting on a lock, the
GIL or a pool sleeps, so this is what the code offers two cores, whatever the machine's load).
Printed per stage and per gap between stages: the mean number of runnable threads and the share
of samples with at most one; and for the painted slices' features up to the ranking, an estimate
of the wall clock on two idle cores (each sample's n runnable threads weighed n / min(n, 2), times
the span's CPU seconds over the samples' sum of n). Import time is paid in this process, as a
command pays it at its start.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import threading
import time
from pathlib import Path

from ml4paleo.pipelines import train as train_module

STAGES = (("features", "run_tasks"), ("ranking", "_keep_selected"), ("folds", "_choose"), ("final", "fit_final"),
          ("suggest", "suggest_planes"))
"""Stage -> the train module's function it times."""


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _runnable(pid: int) -> int:
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                stat = fh.read()
        except OSError:  # the thread ended
            continue
        n += stat[stat.rindex(")") + 2] == "R"
    return n - 1  # the sampler itself


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path, help="a folder with vol.ome.zarr and labels (bench/small_scan.py --workdir)")
    ap.add_argument("--previous", default=None, help="the model a retrain replaces (its ranking is kept)")
    args = ap.parse_args(argv)
    samples: list[tuple[float, int, float]] = []
    marks: list[tuple[str, float, float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), _runnable(os.getpid()), _cpu()))
            time.sleep(0.005)

    def timed(name: str, attr: str) -> None:
        fn = getattr(train_module, attr)

        @functools.wraps(fn)
        def wrapper(*a, **k):
            t, c = time.perf_counter(), _cpu()
            try:
                return fn(*a, **k)
            finally:
                marks.append((name, t, time.perf_counter(), _cpu() - c))
        setattr(train_module, attr, wrapper)

    for name, attr in STAGES:
        timed(name, attr)
    threading.Thread(target=sample, daemon=True).start()
    t0, c0 = time.perf_counter(), _cpu()
    train_module.train_model(args.work / "vol.ome.zarr", args.work / "labels", args.work / "model-threads",
                             overwrite=True, validate="later", previous_model=args.previous)
    t1 = time.perf_counter()
    done.set()
    print(f"train_model {t1 - t0:.2f} s, {_cpu() - c0:.2f} CPU s; load average {os.getloadavg()[0]:.1f}")

    def threads(a: float, b: float) -> str:
        ns = [n for t, n, _ in samples if a <= t < b]
        return f"runnable {sum(ns) / len(ns):.2f}, <= 1 in {sum(n <= 1 for n in ns) / len(ns):.0%}" if ns else ""

    def idle_cores(a: float, b: float) -> str:
        span = [(n, c) for t, n, c in samples if a <= t < b]
        ns = [max(n, 1) for n, _ in span]
        if len(span) < 2:
            return ""
        return f", ~{sum(n / min(n, 2) for n in ns) * (span[-1][1] - span[0][1]) / sum(ns):.2f} s on two idle cores"

    last = t0
    for name, a, b, cpu in sorted(marks, key=lambda m: m[1]):
        print(f"  gap before {name:9s} {a - last:6.2f} s  {threads(last, a)}")
        print(f"  {name:20s} {b - a:6.2f} s  {cpu:5.2f} CPU s  {threads(a, b)}{idle_cores(a, b)}")
        last = b
    print(f"  tail                 {t1 - last:6.2f} s  {threads(last, t1)}")
    stamps = sorted(marks, key=lambda m: m[1])
    if stamps:
        print(f"  first stage to the end: {t1 - stamps[0][1]:.2f} s{idle_cores(stamps[0][1], t1)}")
    first = [m for m in marks if m[0] == "features"]
    ranked = [m for m in marks if m[0] == "ranking"]
    if first and ranked:
        span = [(n, c) for t, n, c in samples if first[0][1] <= t < ranked[0][1]]
        ns = [max(n, 1) for n, _ in span]
        if len(span) > 1:
            estimate = sum(n / min(n, 2) for n in ns) * (span[-1][1] - span[0][1]) / sum(ns)
            print(f"  features to ranking: {ranked[0][1] - first[0][1]:.2f} s, estimated on two idle cores "
                  f"{estimate:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
