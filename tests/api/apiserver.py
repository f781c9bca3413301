"""Helpers for the API tests: a real ``ml4paleo serve`` process (waitress + runner child
processes) on a free port with a temporary data folder, a small client for its JSON API, and
with accounts on: ``ml4paleo user`` as an admin runs it, a browser-like sign-in and API tokens."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pgserver import fresh_database

requests = pytest.importorskip("requests")

FAST_ENV = {
    "ML4PALEO_LEASE_SECONDS": "3",
    "ML4PALEO_POLL_SECONDS": "0.1",
    # a small feature bank: training and segmentation in seconds, still a real random forest
    "ML4PALEO_TRAIN_FEATURES": '{"sigmas": [1.0, 2.5]}',
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server; ``api`` helpers raise with the server's message on unexpected codes."""

    url: str
    data: Path
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with every request (with accounts on: ``dataclasses.replace(srv, headers={"Authorization":
    "Bearer <token>"})`` is the server as seen by that token's user)."""

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **self._with_headers(kw))

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **self._with_headers(kw))

    def _with_headers(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {**kw, "headers": {**self.headers, **kw.get("headers", {})}} if self.headers else kw

    def json(self, method: str, path: str, expect: int = 200, **kw) -> Any:
        r = requests.request(method, self.url + path, timeout=30, **self._with_headers(kw))
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json()

    def status(self, job_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/job/{job_id}/status")

    def wait(self, job_id: str, statuses: set[str], timeout: float = 90.0) -> dict[str, Any]:
        """Poll until the job reaches one of ``statuses``; fail on error or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.status(job_id)
            if doc["status"] in statuses:
                return doc
            assert doc["status"] != "error", f"job failed: {doc['error']}\n{self.tail()}"
            assert time.monotonic() < deadline, f"timed out waiting for {statuses}; job is {doc['status']}"
            time.sleep(0.1)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def runner_pids(self, kind: str) -> list[int]:
        import psutil

        pids = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if child.cmdline()[-2:] == ["runner", kind]:
                    pids.append(child.pid)
            except psutil.Error:
                continue
        return pids


def start_server(data: Path, *, runners: str = "convert=1,segment=1,mesh=1,train=1", env: dict[str, str] | None = None,
                 postgres_url: str | None = None) -> Server:
    """``ml4paleo serve`` on a free port over ``data`` (SQLite there; with ML4PALEO_TEST_DATABASE_URL
    set, or ``postgres_url`` given, a fresh PostgreSQL database per server instead)."""
    port = free_port()
    full_env = {**os.environ, **FAST_ENV, **(env or {})}
    full_env.pop("ML4PALEO_DATABASE_URL", None)
    postgres_url = postgres_url or os.environ.get("ML4PALEO_TEST_DATABASE_URL")
    if postgres_url:
        full_env["ML4PALEO_DATABASE_URL"] = fresh_database(postgres_url, f"ml4paleo_test_{port}")
    log = data / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ml4paleo.cli", "serve", "--port", str(port), "--data", str(data),
                                 "--runners", runners], stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", data, proc, log, full_env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(server.url + "/api/health", timeout=2).ok:
                return server
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"ml4paleo serve did not start:\n{server.tail()}")
        time.sleep(0.1)


def stop_server(server: Server, graceful: bool = False) -> None:
    """Stop the server and its runners: ``graceful``, SIGTERM (the server stops its runners, each
    handing its task back; what ``test_runners`` checks), else SIGKILL to the whole group at once,
    which a throwaway data folder allows and which spares the suite seconds per server."""
    if server.proc.poll() is None:
        if graceful:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(15)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()


def upload_files(srv: Server, job_id: str, files: dict[str, bytes], chunk: int = 256 * 1024) -> None:
    """Upload ``{relative name: bytes}`` in chunks with byte offsets, as the browser does."""
    for name, payload in files.items():
        for offset in range(0, max(len(payload), 1), chunk):
            srv.json("POST", "/api/upload", data={"job_id": job_id, "filename": name, "offset": offset,
                                                  "total_size": len(payload)},
                     files={"file": ("blob", payload[offset:offset + chunk])})


def tiff_slices(volume) -> dict[str, bytes]:
    """A (z, y, x) volume as one TIFF file per slice, named as a scanner would."""
    import io

    import tifffile

    out = {}
    for z, plane in enumerate(volume):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, plane)
        out[f"stack/slice_{z:04d}.tif"] = buffer.getvalue()
    return out


def converted_job(srv: Server, volume, name: str = "test") -> str:
    """A job whose volume (uploaded as TIFF slices) is converted."""
    job_id = srv.json("POST", "/api/job/new", 201, json={"name": name})["job_id"]
    upload_files(srv, job_id, tiff_slices(volume))
    srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
    srv.wait(job_id, {"converted"})
    return job_id


def png_b64(mask) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def box_volume(shape: tuple[int, int, int], box: tuple[slice, slice, slice], seed: int):
    """A uint16 scan: a noisy matrix (1000 +- 40) with a bright box (+3000) at ``box``, which a
    forest trained on a few painted slices segments in seconds."""
    import numpy as np

    volume = np.random.default_rng(seed).normal(1000, 40, shape).astype(np.uint16)
    volume[box] += 3000
    return volume


def painted_job(srv: Server, name: str, seed: int):
    """A converted job with a bright box (:func:`box_volume`, 10 x 32 x 32) painted in full on z
    slices 2, 5 and 8 (1 matrix, 2 box): ``(job_id, volume)``."""
    import numpy as np

    volume = box_volume((10, 32, 32), (slice(2, 9), slice(8, 24), slice(8, 24)), seed)
    job_id = converted_job(srv, volume, name)
    for z in (2, 5, 8):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    return job_id, volume


def task_events(srv: Server, job_id: str) -> list[tuple[str, str, float]]:
    """The job's task events as (task kind, event kind, time), in the log's order."""
    log = srv.json("GET", f"/api/job/{job_id}/events")
    kinds = {t["task_id"]: t["kind"] for t in log["tasks"]}
    return [(kinds[e["task_id"]], e["kind"], e["at"]) for e in log["events"] if e["task_id"] in kinds]


def finished(srv: Server, name: str, formats: tuple[str, ...] = ("stl", "obj")) -> dict[str, str]:
    """A small job taken through segmentation and meshing: ``{job_id, seg_id, model_id}``."""
    import numpy as np

    volume = box_volume((10, 32, 32), np.s_[2:8, 8:24, 8:24], seed=1)
    job_id = converted_job(srv, volume, name)
    for z in (3, 6):
        mask = np.where(volume[z] > 2500, 2, 1).astype(np.uint8)
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": z, "mask": png_b64(mask)})
    started = srv.json("POST", f"/api/job/{job_id}/start", 202)
    srv.wait(job_id, {"segmented"})
    srv.json("POST", f"/api/job/{job_id}/mesh", 202, json={"formats": list(formats)})
    srv.wait(job_id, {"meshed"})
    return {"job_id": job_id, **started}


def ml4paleo_user(srv: Server, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    """``ml4paleo user ...`` on the server's database, the way an admin runs it."""
    return subprocess.run([sys.executable, "-m", "ml4paleo.cli", "user", *args, "--data", str(srv.data)],
                          input=(password + "\n") if password else "", capture_output=True, text=True,
                          env=srv.env, timeout=60)


def sign_in(srv: Server, name: str, password: str) -> requests.Session:
    """A browser-like session: the sign-in form, then the CSRF token of a page on every change."""
    browser = requests.Session()
    form = browser.get(srv.url + "/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = browser.post(srv.url + "/login", data={"name": name, "password": password,
                                              "csrf_token": token, "next": "/"}, timeout=30)
    assert r.status_code == 200 and r.url == srv.url + "/", r.text[:300]
    browser.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)
    return browser


def api_token(srv: Server, browser: requests.Session, name: str = "tests") -> str:
    r = browser.post(srv.url + "/api/account/tokens", json={"name": name}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]
