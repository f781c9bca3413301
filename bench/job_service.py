"""Benchmark the job service: task claims per second, chunked upload throughput through the
real server, and status latency while uploading.

    .venv/bin/python bench/job_service.py                  # 1 GiB upload in 8 MiB chunks
    .venv/bin/python bench/job_service.py --upload-mb 128 --tasks 200

Prints:
- claims/s: N queued tasks claimed and finished by 2 processes against one SQLite (WAL) file;
  each claim is one atomic UPDATE, each finish a token-guarded UPDATE (the runners' hot path);
- upload MB/s: one file sent through ``POST /api/upload`` in chunks by 2 parallel clients, written
  in place at its offsets by ``ml4paleo serve`` (waitress);
- status p50/p95 ms: ``GET /api/job/<id>/status`` timed while the upload runs;
- peak RSS of the server process (memory must not grow with the upload size: chunks stream to disk);
- request log and audit cost: ``GET /api/job/<id>/status`` in-process (accounts on, API token) with the
  request log off and on (a file), and refused probes of another member's job with their audit entry
  written (the first 20 a minute) and rate-limited away (the rest): the differences are their cost.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Process
from pathlib import Path


def _claimer(data: str, out: str) -> None:
    from ml4paleo.jobs.store import JobStore
    from ml4paleo.settings import Settings

    store = JobStore(Settings.from_env({}, data=data))
    n = 0
    while (claim := store.claims.claim("convert", f"bench-{os.getpid()}")) is not None:
        store.claims.finish(claim, {})
        n += 1
    Path(out).write_text(str(n))


def bench_claims(n_tasks: int) -> None:
    from ml4paleo.jobs.store import JobStore
    from ml4paleo.settings import Settings

    with tempfile.TemporaryDirectory() as data:
        store = JobStore(Settings.from_env({}, data=data))
        for i in range(n_tasks):
            job_id = store.jobs.create_job(f"bench {i}")["job_id"]
            store.uploads.begin_chunk(job_id, "a", 0, 1, 1)
            store.uploads.end_chunk(job_id, "a", 0, 1)
            store.uploads.upload_complete(job_id)
        outs = [Path(data) / f"claimed{i}" for i in range(2)]
        procs = [Process(target=_claimer, args=(data, str(o))) for o in outs]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        dt = time.perf_counter() - t0
        counts = [int(o.read_text()) for o in outs]
        assert sum(counts) == n_tasks, counts
        print(f"claims: {n_tasks} tasks claimed+finished by 2 processes in {dt:.2f} s "
              f"= {n_tasks / dt:.0f} tasks/s (split {counts[0]}/{counts[1]})")


def bench_upload(upload_mb: int, chunk_mb: int) -> None:
    import numpy as np
    import psutil
    import requests

    with tempfile.TemporaryDirectory() as data, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "ml4paleo.cli", "serve", "--port", str(port), "--data", data,
                                 "--runners", "none"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if requests.get(url + "/api/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            job_id = requests.post(url + "/api/job/new", json={"name": "bench"}).json()["job_id"]
            chunk = np.random.default_rng(0).bytes(chunk_mb << 20)
            total = upload_mb << 20
            offsets = list(range(0, total, chunk_mb << 20))
            peak = [0]
            server = psutil.Process(proc.pid)
            done = threading.Event()
            latencies: list[float] = []

            def watch() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], server.memory_info().rss)
                    t = time.perf_counter()
                    requests.get(f"{url}/api/job/{job_id}/status", timeout=30)
                    latencies.append(time.perf_counter() - t)
                    time.sleep(0.05)

            def send(offset: int) -> None:
                with requests.Session() as session:
                    r = session.post(url + "/api/upload", data={"job_id": job_id, "filename": "scan/big.raw",
                                                                "offset": offset, "total_size": total},
                                     files={"file": ("big.raw", chunk[: min(len(chunk), total - offset)])}, timeout=120)
                    r.raise_for_status()

            watcher = threading.Thread(target=watch)
            watcher.start()
            t0 = time.perf_counter()
            send(offsets[0])  # offsets must continue the file: first chunk, then the rest in parallel pairs
            with ThreadPoolExecutor(2) as pool:
                for i in range(1, len(offsets), 2):
                    list(pool.map(send, offsets[i:i + 2]))
            dt = time.perf_counter() - t0
            done.set()
            watcher.join()
            size = (Path(data) / "jobs" / job_id / "upload" / "scan" / "big.raw").stat().st_size
            assert size == total, (size, total)
            lat = sorted(latencies) or [0.0]
            print(f"upload: {upload_mb} MiB in {chunk_mb} MiB chunks in {dt:.2f} s = {upload_mb / dt:.0f} MiB/s; "
                  f"status p50 {1000 * lat[len(lat) // 2]:.1f} ms, p95 {1000 * lat[int(len(lat) * 0.95)]:.1f} ms "
                  f"({len(lat)} requests); server peak RSS {peak[0] / 2**20:.0f} MiB")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def _mean_ms(client, n: int, path: str, headers: dict[str, str], expect: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        r = client.get(path, headers=headers)
        assert r.status_code == expect, r.status_code
        r.close()  # the request log writes its line when the answer is closed
    return 1000 * (time.perf_counter() - t0) / n


def bench_request_overhead(n: int) -> None:
    import resource

    from ml4paleo.settings import Settings
    from ml4paleo.web import create_app, request_log
    from ml4paleo.web.auth.audit import REFUSALS_PER_MINUTE

    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings.from_env({}, data=data, auth="accounts"))
        accounts = app.extensions["ml4paleo.store"].accounts
        headers = {}
        probers = [f"bob{i}" for i in range(7)]  # each is audited 20 times a minute: one round each
        for name in ("alice", *probers):
            accounts.add_user(name, f"{name}-password")
            headers[name] = {"Authorization": "Bearer " + accounts.new_token(accounts.user_id(name), "bench")["token"]}
        client = app.test_client()
        job_id = client.post("/api/job/new", json={"name": "bench"}, headers=headers["alice"]).json["job_id"]
        own = f"/api/job/{job_id}/status"
        _mean_ms(client, 50, own, headers["alice"], 200)  # warm
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(7):  # interleaved, best of each: the machine's load drifts between rounds
            for mode, destination in (("off", "off"), ("on", str(Path(data) / "access.log"))):
                request_log.configure(destination)
                times[mode].append(_mean_ms(client, n, own, headers["alice"], 200))
        off, on = min(times["off"]), min(times["on"])
        lines = len((Path(data) / "access.log").read_text().splitlines())
        audited = min(_mean_ms(client, REFUSALS_PER_MINUTE, own, headers[bob], 404) for bob in probers)
        limited = min(_mean_ms(client, REFUSALS_PER_MINUTE, own, headers[bob], 404) for bob in probers)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"request log: status {off:.2f} ms/request without, {on:.2f} ms with = +{on - off:.2f} ms "
              f"({lines} lines); refused probe {limited:.2f} ms, with its audit entry {audited:.2f} ms = "
              f"+{audited - limited:.2f} ms (the first {REFUSALS_PER_MINUTE} a minute per asker; best of 7 askers); "
              f"peak RSS {peak:.0f} MiB")
        request_log.configure("off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=500, help="tasks to claim (default 500)")
    parser.add_argument("--upload-mb", type=int, default=1024, help="MiB to upload (default 1024)")
    parser.add_argument("--chunk-mb", type=int, default=8, help="chunk size in MiB (default 8)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per request-log timing (default 2000)")
    args = parser.parse_args()
    bench_request_overhead(args.requests)
    bench_claims(args.tasks)
    bench_upload(args.upload_mb, args.chunk_mb)


if __name__ == "__main__":
    main()
