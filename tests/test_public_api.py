"""The package's face: six functions importable from ``ml4paleo``, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_public_api_imports_from_the_package():
    import ml4paleo
    from ml4paleo import convert_volume, export_volume, mesh_labels, objects_from_labels, segment_volume, train_model
    from ml4paleo.pipelines import convert, export, mesh, objects, segment, train

    assert set(ml4paleo.__all__) == {"__version__", "convert_volume", "train_model", "segment_volume",
                                     "mesh_labels", "export_volume", "objects_from_labels"}
    assert convert_volume is convert.convert_volume and train_model is train.train_model
    assert segment_volume is segment.segment_volume and mesh_labels is mesh.mesh_labels
    assert export_volume is export.export_volume and objects_from_labels is objects.objects_from_labels
    for func in (convert_volume, train_model, segment_volume, mesh_labels, export_volume, objects_from_labels):
        assert ">>>" in (func.__doc__ or ""), f"{func.__name__} has no example in its docstring"
    with pytest.raises(AttributeError, match="no attribute"):
        ml4paleo.not_a_function  # noqa: B018


def test_importing_the_package_stays_light():
    code = ("import sys, ml4paleo, ml4paleo.cli; "
            "print(sorted(m for m in ('numpy', 'scipy', 'zarr', 'dask', 'sklearn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
