"""The batch processes' garbage collector: fewer collections in a process of its own, the
caller's own thresholds kept in-process."""

from __future__ import annotations

import gc
import subprocess
import sys

from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.collections_policy import BATCH_THRESHOLDS


def test_a_segment_process_of_its_own_collects_at_the_batch_thresholds(tmp_path):
    # the command fails on the missing volume after setting the thresholds; the check reads them at exit
    code = ("import atexit, gc, sys; atexit.register(lambda: print('thresholds', gc.get_threshold())); "
            "from ml4paleo.cli import run; sys.argv = ['ml4paleo', 'segment', sys.argv[1], sys.argv[1], sys.argv[2]]; run()")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "seg.ome.zarr")],
                         capture_output=True, text=True)
    assert f"thresholds {BATCH_THRESHOLDS}" in out.stdout, out.stdout + out.stderr


def test_in_process_the_caller_keeps_its_thresholds(tmp_path):
    before = gc.get_threshold()
    CliRunner().invoke(main, ["segment", str(tmp_path), str(tmp_path), str(tmp_path / "seg.ome.zarr")])
    assert gc.get_threshold() == before
