"""Benchmark: what ``ml4paleo train`` and ``ml4paleo segment`` pay on one thread before their first
heavy step, in steps (issue 23 item 5).

    python bench/startup.py segment          # the imports and numba's loads a segmentation pays
    python bench/startup.py train --repeat 3

Each run is a fresh interpreter (``python -c``, the imports cold in ``sys.modules``, warm in the page
cache); each step is timed in CPU seconds of that process (the steps run on one thread, so on a
loaded shared machine CPU compares runs better than the wall clock, which is printed beside it).
The steps are the order a process meets them: the command line, the pipeline's module, numba's
import, ``scipy.linalg`` (which numba imports when it first loads a cached kernel: its BLAS check,
``numba.np.arraymath``), numba's registries and ml4paleo's Gaussian passes, then the packed forest's
kernel (segment) or scikit-learn's forest (train, imported for the first fit). Peak RSS per run.
``PYTHONPATH=<other checkout>/src`` measures another version: its first run compiles numba's kernels
for that path (numba's cache is keyed by the source file), so compare from the second run on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STEPS = {
    "segment": [("command line (click)", "import ml4paleo.cli"),
                ("pipelines.segment (numpy, zarr, models)", "import ml4paleo.pipelines.segment"),
                ("numba import", "import numba"),
                ("scipy.linalg (numba's BLAS check)", "import scipy.linalg"),
                ("numba's registries + the Gaussian passes",
                 "from ml4paleo.compute.features import load_compiled_pass; load_compiled_pass()"),
                ("packed forest kernel", "from ml4paleo.models._packed_warm import warm_up; warm_up()")],
    "train": [("command line (click)", "import ml4paleo.cli"),
              ("pipelines.train (numpy, zarr, scipy.ndimage, PIL)", "import ml4paleo.pipelines.train"),
              ("numba import", "import numba"),
              ("scipy.linalg (numba's BLAS check)", "import scipy.linalg"),
              ("numba's registries + the Gaussian passes",
               "from ml4paleo.compute.features import load_compiled_pass; load_compiled_pass()"),
              ("sklearn.ensemble (the first fit's import)", "import ml4paleo.models, sklearn.ensemble")],
}
"""Command -> (step, the code it runs), in the order the process meets them."""

_RUNNER = """
import json, resource, sys, time
out = []
for name, code in json.loads(sys.argv[1]):
    c, t = time.process_time(), time.perf_counter()
    exec(code)
    out.append((name, time.process_time() - c, time.perf_counter() - t))
print(json.dumps([out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""


def run_once(command: str) -> tuple[list[tuple[str, float, float]], float]:
    """The steps of ``command`` in a fresh interpreter: (step, CPU s, wall s) and peak RSS (MB)."""
    done = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(STEPS[command])], capture_output=True, text=True,
                          check=True)
    steps, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return [tuple(s) for s in steps], peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=sorted(STEPS))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{args.command}: load average {os.getloadavg()[0]:.1f}")
    for r in range(args.repeat):
        steps, peak = run_once(args.command)
        cpu, wall = sum(s[1] for s in steps), sum(s[2] for s in steps)
        print(f"  run {r + 1}: {cpu:.2f} s CPU ({wall:.2f} s wall) on one thread, peak RSS {peak:.0f} MB")
        for name, c, w in steps:
            print(f"    {name:<50} {c:6.3f} s CPU ({w:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
