"""Segmenters behind one protocol (pixel classifiers, the shape prior and both), and their
model folders.

``load_model(model_dir)`` returns a fitted segmenter with ``.classes``, ``.metadata`` and
``.feature_settings``; ``save_model`` writes one atomically.
"""

from ml4paleo.models._base import Segmenter, SklearnSegmenter, labels_from_proba, region_labels
from ml4paleo.models._context import ContextSegmenter, InterpolationSegmenter
from ml4paleo.models._forest import HistGradientBoostingSegmenter, RandomForestSegmenter
from ml4paleo.models._local import LocalCorrections, mixed_forest
from ml4paleo.models._local_net import LocalNetwork
from ml4paleo.models._io import (KINDS, METADATA_FILE, VALIDATION_FILE, cached_model, load_model, load_painted,
                                 make_segmenter, model_report, save_model, validation_state)
from ml4paleo.models._packed_warm import warm_up_in_background

__all__ = [
    "KINDS",
    "METADATA_FILE",
    "VALIDATION_FILE",
    "ContextSegmenter",
    "InterpolationSegmenter",
    "LocalCorrections",
    "LocalNetwork",
    "HistGradientBoostingSegmenter",
    "RandomForestSegmenter",
    "Segmenter",
    "SklearnSegmenter",
    "cached_model",
    "labels_from_proba",
    "load_model",
    "load_painted",
    "make_segmenter",
    "mixed_forest",
    "model_report",
    "region_labels",
    "save_model",
    "validation_state",
    "warm_up_in_background",
]
