"""The medical exports' building blocks: the parallel gzip stream is one valid gzip member,
the same bytes whatever the threads; the NIfTI header is nibabel's own."""

from __future__ import annotations

import gzip
import io
import zlib

import nibabel as nib
import numpy as np
import pytest

from ml4paleo.errors import InputError
from ml4paleo.io import exports_medical
from ml4paleo.io.exports_medical import iter_gzip, nifti_header


def test_gzip_blocks_join_into_one_member_whatever_the_threads(monkeypatch, rng):
    monkeypatch.setattr(exports_medical, "_GZIP_BLOCK", 1000)  # many blocks, cut across pieces
    data = rng.integers(0, 50, (7, 33, 29), dtype=np.uint16)
    pieces = [b"head", data[:3], data[3:], b"", b"tail"]
    expected = b"head" + data.tobytes() + b"tail"
    one = b"".join(iter_gzip(pieces, threads=1))
    assert b"".join(iter_gzip(pieces, threads=3)) == one
    assert gzip.decompress(one) == expected
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert d.decompress(one) == expected and d.eof and not d.unused_data
    assert gzip.decompress(b"".join(iter_gzip([]))) == b""


def test_primed_blocks_compress_like_one_stream(rng):
    data = np.repeat(rng.integers(0, 4, 1 << 19, dtype=np.uint8), 8)  # 4 MiB of runs: four blocks
    ours = len(b"".join(iter_gzip([data], threads=2)))
    serial = len(gzip.compress(data.tobytes(), compresslevel=1))
    assert ours <= serial * 1.01


def test_nifti_header_reads_back_with_nibabel():
    raw = nifti_header((4, 5, 6), np.dtype(">i2"), (2.0, 1.0, 0.5), "millimeter")
    assert len(raw) == 352
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    assert header.get_data_shape() == (6, 5, 4) and header.get_data_dtype() == np.dtype("<i2")
    assert header.get_zooms() == (0.5, 1.0, 2.0) and header.get_xyzt_units()[0] == "mm"
    assert int(header["vox_offset"]) == 352


def test_nifti_refuses_an_axis_beyond_its_16_bit_dimensions():
    with pytest.raises(InputError, match="at most 32767"):
        nifti_header((40000, 10, 10), np.dtype(np.uint8), (1.0, 1.0, 1.0), "micrometer")
