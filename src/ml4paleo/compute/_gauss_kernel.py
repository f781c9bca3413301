"""The compiled Gaussian and interpolation passes of :mod:`ml4paleo.compute.features` (kept apart
so numba is imported only by callers that ask for it; ``cache=True`` stores the machine code
beside this file)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def valid_pass(x, w, axis, out):  # pragma: no cover - compiled
    """``out`` = float32 ``x`` correlated along ``axis`` with the symmetric weights ``w`` (2r + 1,
    float64), at the positions whose reach stays inside ``x`` (``out`` is 2r shorter there).

    The arithmetic is scipy.ndimage's ``correlate1d`` for a symmetric kernel, in its order: a
    float64 sum started at the centre tap, then ``(left + right) * w`` from the outermost pair in,
    rounded to float32 once; so the values are scipy's bit for bit. Each line is summed as a
    whole row of float64 accumulators (vectorised over the contiguous x axis) where scipy copies
    every line into a buffer and walks it voxel by voxel: ~4x faster along z and y."""
    r = (w.shape[0] - 1) // 2
    nz, ny, nx = out.shape
    acc = np.empty(nx, np.float64)
    for z in range(nz):
        for y in range(ny):
            if axis == 0:
                centre = x[z + r, y]
            elif axis == 1:
                centre = x[z, y + r]
            else:
                centre = x[z, y, r:r + nx]
            for i in range(nx):
                acc[i] = np.float64(centre[i]) * w[r]
            for j in range(r, 0, -1):
                if axis == 0:
                    a, b = x[z + r - j, y], x[z + r + j, y]
                elif axis == 1:
                    a, b = x[z, y + r - j], x[z, y + r + j]
                else:
                    a, b = x[z, y, r - j:r - j + nx], x[z, y, r + j:r + j + nx]
                wj = w[r + j]
                for i in range(nx):
                    acc[i] += (np.float64(a[i]) + np.float64(b[i])) * wj
            for i in range(nx):
                out[z, y, i] = np.float32(acc[i])


@njit(nogil=True, cache=True)
def interpolate_pass(c, k0, k1, w, omw, axis, dst):  # pragma: no cover - compiled
    """``dst`` = ``c`` interpolated linearly along ``axis``: position j of ``dst`` reads the
    coarse voxels ``k0[j]`` and ``k1[j]`` with weights ``omw[j]`` and ``w[j]`` (float32).

    The arithmetic is that of :func:`ml4paleo.compute.features._upsample_axis`: two float32
    products, each rounded, then their float32 sum; so the values are its values bit for bit, in
    one pass over ``dst`` where numpy's phase slices write it with a stride, twice."""
    nz, ny, nx = dst.shape
    if axis == 0:
        for z in range(nz):
            lo, hi, a, b = k0[z], k1[z], omw[z], w[z]
            for y in range(ny):
                for x in range(nx):
                    dst[z, y, x] = c[lo, y, x] * a + c[hi, y, x] * b
    elif axis == 1:
        for z in range(nz):
            for y in range(ny):
                lo, hi, a, b = k0[y], k1[y], omw[y], w[y]
                for x in range(nx):
                    dst[z, y, x] = c[z, lo, x] * a + c[z, hi, x] * b
    else:
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    dst[z, y, x] = c[z, y, k0[x]] * omw[x] + c[z, y, k1[x]] * w[x]


@njit(nogil=True, cache=True)
def second_derivatives(g, start, pairs, out):  # pragma: no cover - compiled
    """``out[k]`` = the second derivative of ``g`` along the axes ``pairs[k]`` on the region of
    ``g`` starting at ``start`` (``out``'s shape less its first axis), each a central difference
    of central differences, ``(d(p + e_b) - d(p - e_b)) / 2`` with ``d(q) = (g(q + e_a) -
    g(q - e_a)) / 2``, in float32 as ``np.gradient`` twice computes it; so its values bit for bit,
    without the whole window's first derivatives written and read back. The region must keep
    two voxels from ``g``'s edges along the axes it differentiates (np.gradient's one-sided
    differences there are not these)."""
    half = np.float32(0.5)
    n, nz, ny, nx = out.shape
    z0, y0, x0 = start[0], start[1], start[2]
    for k in range(n):
        a, b = pairs[k, 0], pairs[k, 1]
        az, ay, ax = int(a == 0), int(a == 1), int(a == 2)
        bz, by, bx = int(b == 0), int(b == 1), int(b == 2)
        # x offsets of the four taps, unsigned so numba skips its negative-index wraparound
        o1, o2 = np.uint64(x0 + bx + ax), np.uint64(x0 + bx - ax)
        o3, o4 = np.uint64(x0 - bx + ax), np.uint64(x0 - bx - ax)
        for z in range(nz):
            zz = z0 + z
            for y in range(ny):
                yy = y0 + y
                r1 = g[zz + bz + az, yy + by + ay]
                r2 = g[zz + bz - az, yy + by - ay]
                r3 = g[zz - bz + az, yy - by + ay]
                r4 = g[zz - bz - az, yy - by - ay]
                dst = out[k, z, y]
                for x in range(nx):
                    i = np.uint64(x)
                    ahead = (r1[i + o1] - r2[i + o2]) * half
                    behind = (r3[i + o3] - r4[i + o4]) * half
                    dst[i] = (ahead - behind) * half
