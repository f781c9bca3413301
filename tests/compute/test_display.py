"""Display helpers: robust window, 8-bit mapping, overlay, next-slice choice, PNG codec."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.compute import display
from ml4paleo.io import png, slices


def test_robust_window_ignores_a_few_hot_voxels(rng):
    sample = rng.normal(1000, 100, 100_000)
    sample[:50] = 65535  # a metal inclusion
    lo, hi = display.robust_window(sample)
    assert 600 < lo < 800 and 1200 < hi < 1400
    assert display.robust_window(np.full(10, 7.0)) == (7.0, 8.0)


def test_to_uint8_maps_the_window_and_clips():
    out = display.to_uint8(np.array([[0, 100, 150, 200, 300]], np.uint16), [100, 200])
    assert out.tolist() == [[0, 0, 128, 255, 255]]
    with pytest.raises(InputError, match="window"):
        display.to_uint8(np.zeros((2, 2)), [5, 5])


def test_overlay_colours_classes_but_not_background():
    gray = np.full((2, 2), 100, np.uint8)
    labels = np.array([[0, 1], [2, 0]], np.uint8)
    rgb = display.overlay(gray, labels, {0: (0, 0, 255), 1: (255, 0, 0), 2: (0, 255, 0)}, opacity=1.0)
    assert rgb[0, 0].tolist() == [100, 100, 100] and rgb[0, 1].tolist() == [255, 0, 0] and rgb[1, 0].tolist() == [0, 255, 0]
    assert display.hex_to_rgb("#f80") == (255, 136, 0) and display.hex_to_rgb("oops") == (255, 0, 255)


def test_next_slice_favours_slices_far_from_annotated_ones(rng):
    picks = np.array([display.pick_next_slice(100, [0, 1, 2], rng) for _ in range(400)])
    assert not np.isin(picks, [0, 1, 2]).any() and np.mean(picks > 50) > 0.8
    assert 0 <= display.pick_next_slice(5, [], rng) < 5
    assert 0 <= display.pick_next_slice(3, [0, 1, 2], rng) < 3  # all annotated: any slice


def test_png_round_trip_and_bad_png():
    image = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert (png.decode_png(png.encode_png(image)) == image).all()
    with pytest.raises(InputError, match="mask is not a readable PNG"):
        png.decode_png(b"GIF89a", what="mask")
    with pytest.raises(InputError, match="mask is 5x4 pixels; slices are 3x2"):
        png.decode_png(png.encode_png(image), what="mask", shape=(2, 3))


def test_a_decompression_bomb_is_refused_from_its_header():
    import zlib

    # a valid 60000 x 60000 gray PNG header followed by a tiny (truncated) stream
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = (60000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    with pytest.raises(InputError):
        png.decode_png(bomb, what="mask")
    with pytest.raises(InputError, match="mask"):
        png.decode_png(bomb, what="mask", shape=(8, 8))


def test_read_slice_checks_axis_and_range(tmp_path, rng):
    from ml4paleo.io.omezarr import OmeZarrWriter

    volume = rng.integers(0, 1000, (4, 6, 8), dtype=np.uint16)
    with OmeZarrWriter(tmp_path / "v.ome.zarr", volume.shape, volume.dtype) as w:
        w.write_slab(0, volume)
    assert (slices.read_slice(tmp_path / "v.ome.zarr", "y", 2) == volume[:, 2, :]).all()
    assert (slices.read_slice(tmp_path / "v.ome.zarr", "x", 7) == volume[:, :, 7]).all()
    lo, hi = slices.volume_window(tmp_path / "v.ome.zarr")
    assert volume.min() <= lo < hi <= volume.max()
    with pytest.raises(ArtifactNotFound):
        slices.read_slice(tmp_path / "v.ome.zarr", "z", 4)
    with pytest.raises(ArtifactNotFound):
        slices.read_slice(tmp_path / "v.ome.zarr", "t", 0)
