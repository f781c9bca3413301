"""One exception hierarchy: every error ml4paleo raises on purpose is an ``Ml4PaleoError``, and
its leaves also subclass the builtin a caller would catch."""

from __future__ import annotations

import inspect

from ml4paleo import errors


def test_every_error_class_is_in_the_hierarchy():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 12 and all(issubclass(c, errors.Ml4PaleoError) for c in classes)


def test_the_runner_signals_are_cancellations():
    for cls in (errors.LeaseLost, errors.RunnerStopping):
        assert issubclass(cls, errors.Cancelled) and issubclass(cls, errors.Ml4PaleoError)


def test_a_missing_artifact_is_one_class_caught_as_lookup_or_file_not_found():
    assert errors.VolumeNotFoundError is errors.ArtifactNotFound
    exc = errors.ArtifactNotFound("no OME-Zarr volume at /x")
    assert isinstance(exc, LookupError) and isinstance(exc, FileNotFoundError) and str(exc) == "no OME-Zarr volume at /x"
