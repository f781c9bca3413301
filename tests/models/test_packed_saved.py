"""A saved forest's packed arrays (``forest.npz``): loaded without scikit-learn, the same
probabilities bit for bit, and older folders (no file, or another format) still load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml4paleo.compute.features import FeatureSettings
from ml4paleo.models import RandomForestSegmenter, load_model, save_model
from ml4paleo.models._packed_io import PACKED_FILE


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A three-class forest saved to a folder, its training rows and fresh rows to predict."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 3)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.4 * X[:, 1] * X[:, 2], [-0.5, 0.5])
    model = RandomForestSegmenter(("a", "b", "c"), FeatureSettings(sigmas=(1.0,), filters=("gaussian", "log")),
                                  n_estimators=10).fit(X, y)
    folder = tmp_path_factory.mktemp("forest") / "model"
    save_model(model, folder)
    rows = rng.normal(size=(2001, 3)).astype(np.float32)
    return folder, model, rows


def test_loaded_from_the_packed_arrays_without_unpickling(saved):
    folder, model, rows = saved
    assert (folder / PACKED_FILE).is_file()
    loaded = load_model(folder)
    expected = model.estimator.predict_proba(rows).astype(np.float32)
    assert np.array_equal(loaded.predict_proba(rows), expected)  # small input: packed, as loaded
    assert loaded._estimator is None  # scikit-learn's estimator never unpickled
    assert np.array_equal(loaded.estimator.predict_proba(rows).astype(np.float32), expected)  # on first use


@pytest.mark.parametrize("damage", ["missing", "other format"])
def test_older_folders_load_the_estimator(saved, tmp_path, damage):
    folder, model, rows = saved
    copy = tmp_path / "model"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    if damage == "missing":
        (copy / PACKED_FILE).unlink()
    else:
        with np.load(copy / PACKED_FILE) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["format"] = np.int64(99)
        with open(copy / PACKED_FILE, "wb") as f:
            np.savez(f, **arrays)
    loaded = load_model(copy)
    assert loaded._estimator is not None
    assert np.array_equal(loaded.predict_proba(rows), model.estimator.predict_proba(rows).astype(np.float32))


def _run(script: str) -> None:
    """``script`` in a process of its own: module state (the kernel's flag, imports) stays out of this one."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


@pytest.fixture
def rows_and_expected(saved):
    folder, model, rows = saved
    np.save(folder.parent / "rows.npy", rows)
    np.save(folder.parent / "expected.npy", model.estimator.predict_proba(rows).astype(np.float32))
    return folder, folder.parent / "rows.npy", folder.parent / "expected.npy"


def test_a_fresh_process_predicts_without_importing_scikit_learn(rows_and_expected):
    folder, rows, expected = rows_and_expected
    _run(f"""
        import sys
        import numpy as np
        from ml4paleo.models import load_model
        loaded = load_model({str(folder)!r})
        assert np.array_equal(loaded.predict_proba(np.load({str(rows)!r})), np.load({str(expected)!r}))
        assert not any(m.startswith("sklearn") for m in sys.modules), "scikit-learn imported"
        assert "joblib" not in sys.modules, "joblib imported: the estimator is unpickled on first use only"
        print("ok")
    """)


def test_a_model_in_memory_takes_the_kernel_for_small_inputs_once_warm(rows_and_expected):
    folder, rows, expected = rows_and_expected
    _run(f"""
        import numpy as np
        from ml4paleo.models import load_model
        from ml4paleo.models._packed_warm import kernel_loaded, warm_up
        rows, expected = np.load({str(rows)!r}), np.load({str(expected)!r})
        model = load_model({str(folder)!r})
        fitted = model.estimator  # unpickled: the model as training leaves it in memory
        calls = []
        real = fitted.predict_proba
        fitted.predict_proba = lambda X: calls.append(len(X)) or real(X)
        model._packed = None
        assert not kernel_loaded()
        assert np.array_equal(model.predict_proba(rows), expected) and calls == [len(rows)]  # scikit-learn
        warm_up()
        assert kernel_loaded()
        assert np.array_equal(model.predict_proba(rows), expected) and calls == [len(rows)]  # the kernel
        print("ok")
    """)
