"""A painted or shown plane of the volume, as one value from the request to the training rows.

:class:`SliceRef` names a plane across one axis: ``z`` (the XY slices of the stack), ``y`` (XZ)
or ``x`` (YZ), at an index along that axis. It is built and checked once where a plane enters (a
request, a file name, a caller's mapping) and carried as it is to the store, the files and
training; its file name, its name for people and its JSON form are derived here and nowhere
else. Standard library only: every layer uses it.
"""

from __future__ import annotations

import functools
import numbers
import re
from dataclasses import dataclass
from typing import Any, Sequence

from ml4paleo.errors import InputError

__all__ = ["AXES", "SliceRef"]

AXES = ("z", "y", "x")
"""The volume's axes in array order (z the slice index)."""

_PLANE_FILE = re.compile(r"^([xy])_?(\d+)$", re.IGNORECASE)
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")
_PLANE_NAME = re.compile(r"^([xyz])(\d+)$")


@functools.total_ordering
@dataclass(frozen=True)
class SliceRef:
    """The plane at ``index`` across ``axis`` (``z``, ``y`` or ``x``). Ordered z planes first,
    then y, then x, each by index."""

    axis: str
    index: int

    def __post_init__(self) -> None:
        if not isinstance(self.axis, str) or self.axis not in AXES:
            raise InputError(f"axis must be z, y or x; got {str(self.axis)[:10]!r}")
        if isinstance(self.index, bool) or not isinstance(self.index, numbers.Integral) or self.index < 0:
            raise InputError(f"{self.axis} must be a slice index >= 0; got {self.index!r}")
        object.__setattr__(self, "index", int(self.index))

    def __lt__(self, other: SliceRef) -> bool:
        if not isinstance(other, SliceRef):
            return NotImplemented
        return (self.dim, self.index) < (other.dim, other.index)

    @property
    def dim(self) -> int:
        """The array axis (0, 1, 2) the plane is across."""
        return AXES.index(self.axis)

    def within(self, shape: Sequence[int]) -> SliceRef:
        """This plane, if it lies in a volume of ``shape`` (z, y, x); else InputError naming the range."""
        n = int(shape[self.dim])
        if not self.index < n:
            raise InputError(f"{self.axis} must be a slice index from 0 to {n - 1}; got {self.index}")
        return self

    def plane_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """(rows, columns) of the plane in a volume of ``shape``: (y, x) for z, (z, x) for y, (z, y) for x."""
        rows, cols = (int(n) for a, n in enumerate(shape) if a != self.dim)
        return rows, cols

    def region(self) -> tuple[Any, Any, Any]:
        """The plane as an index into a (z, y, x) array."""
        return tuple(self.index if a == self.dim else slice(None) for a in range(3))  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """How people read it: ``12`` for a z slice (the seed's numbering), ``y120`` for a plane."""
        return str(self.index) if self.axis == "z" else f"{self.axis}{self.index}"

    @property
    def file_name(self) -> str:
        """The annotation PNG it is written to: ``12.png`` for a z slice, ``y_0120.png`` for a plane."""
        return f"{self.index}.png" if self.axis == "z" else f"{self.axis}_{self.index:04d}.png"

    def to_json(self) -> int | str:
        """Its form in JSON documents (a model's folds and slices): the index of a z slice, ``"y120"``."""
        return self.index if self.axis == "z" else self.name

    @classmethod
    def of_file(cls, stem: str) -> SliceRef | None:
        """The plane a file's stem names (``y_0120``, ``x80``; else the last integer in it is a z
        slice, so ``slice_0012`` from other tools works); None when it has no number."""
        plane = _PLANE_FILE.match(stem)
        if plane:
            return cls(plane.group(1).lower(), int(plane.group(2)))
        number = _LAST_INT.search(stem)
        return cls("z", int(number.group(1))) if number else None

    @classmethod
    def of_json(cls, value: int | str) -> SliceRef:
        """The inverse of :meth:`to_json`."""
        if isinstance(value, str) and (named := _PLANE_NAME.match(value)):
            return cls(named.group(1), int(named.group(2)))
        return cls("z", value)  # type: ignore[arg-type]

    @classmethod
    def of(cls, value: Any) -> SliceRef:
        """A caller's name for a plane: a SliceRef, a z index, or ``(axis, index)``; InputError otherwise."""
        if isinstance(value, SliceRef):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            return cls(value[0], value[1])
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"a slice is a z index or (axis, index) with axis z, y or x; got {value!r}"[:200])
        return cls("z", value)
