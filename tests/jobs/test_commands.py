"""The ``runner`` and ``serve`` commands' options (the servers themselves run in tests/api)."""

from __future__ import annotations

import numpy as np
import tifffile
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings


def test_runner_once_drains_its_queue(tmp_path, rng):
    store = JobStore(Settings.from_env({}, data=tmp_path))
    job_id = store.jobs.create_job("cli")["job_id"]
    upload = store.paths(job_id).upload
    upload.mkdir(parents=True)
    tifffile.imwrite(upload / "v.tif", rng.integers(0, 999, (5, 12, 12), dtype=np.uint16))
    size = (upload / "v.tif").stat().st_size
    store.uploads.begin_chunk(job_id, "v.tif", 0, size, size)
    store.uploads.end_chunk(job_id, "v.tif", 0, size)
    store.uploads.upload_complete(job_id)
    result = CliRunner().invoke(main, ["runner", "convert", "--once", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert store.jobs.job_doc(job_id)["status"] == "converted"


def test_bad_options_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--runners", "paint=2"])
    assert result.exit_code != 0 and "--runners must look like" in result.output
    result = CliRunner().invoke(main, ["runner", "paint"])
    assert result.exit_code == 2 and "paint" in result.output


def test_serve_on_a_busy_port_is_a_one_line_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--port", str(port), "--runners", "none"])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output
