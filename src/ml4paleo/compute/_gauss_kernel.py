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


@njit(nogil=True, cache=True)
def pooled_tensor(g, s0, s1, s2, n0, n1, n2, f0, f, d0, out):  # pragma: no cover - compiled
    """``out[k]`` = the box mean (:func:`ml4paleo.compute.features._box_mean`, boxes of ``f0 x f
    x f``) of the k-th product ``g_a * g_b`` (a <= b, in that order) of the central differences
    ``g_a = (g(q + e_a) - g(q - e_a)) * 0.5`` along y, x and, with ``d0`` = 1, z first, over
    the window ``s .. s + n`` of the products (whose voxel p is ``g``'s voxel ``p + (d0, 1, 1)``).

    The arithmetic is numpy's in :mod:`~ml4paleo.compute.features`: float32 differences and
    products, each box summed along z, then y, then x (a partial last box repeats the edge
    voxel), each sum a float32 fold from the box's first voxel, then scaled by ``1 / (f0 f f)``;
    so the values are its values bit for bit. Row by row: the products of one x row of the
    window, folded over the box's z rows, then its y rows, then pooled along x, in buffers of
    a few rows that stay in cache, where numpy wrote the six products of the whole window (and
    its derivatives) to memory and read them back."""
    half = np.float32(0.5)
    scale = np.float32(1.0 / (f0 * f * f))
    nprod = out.shape[0]
    a = np.empty((nprod, n2), np.float32)
    b = np.empty((nprod, n2), np.float32)
    for b0 in range(out.shape[1]):
        for b1 in range(out.shape[2]):
            for j in range(f):
                q1 = s1 + min(f * b1 + j, n1 - 1) + 1
                for i in range(f0):
                    q0 = s0 + min(f0 * b0 + i, n0 - 1) + d0
                    row, north, south = g[q0, q1, s2:s2 + n2 + 2], g[q0, q1 + 1, s2 + 1:], g[q0, q1 - 1, s2 + 1:]
                    if d0:
                        up, down = g[q0 + 1, q1, s2 + 1:], g[q0 - 1, q1, s2 + 1:]
                        for x in range(n2):
                            gz = (up[x] - down[x]) * half
                            gy = (north[x] - south[x]) * half
                            gx = (row[x + 2] - row[x]) * half
                            if i == 0:
                                a[0, x], a[1, x], a[2, x] = gz * gz, gz * gy, gz * gx
                                a[3, x], a[4, x], a[5, x] = gy * gy, gy * gx, gx * gx
                            else:
                                a[0, x] += gz * gz
                                a[1, x] += gz * gy
                                a[2, x] += gz * gx
                                a[3, x] += gy * gy
                                a[4, x] += gy * gx
                                a[5, x] += gx * gx
                    else:
                        for x in range(n2):
                            gy = (north[x] - south[x]) * half
                            gx = (row[x + 2] - row[x]) * half
                            if i == 0:
                                a[0, x], a[1, x], a[2, x] = gy * gy, gy * gx, gx * gx
                            else:
                                a[0, x] += gy * gy
                                a[1, x] += gy * gx
                                a[2, x] += gx * gx
                for t in range(nprod):
                    if j == 0:
                        b[t, :] = a[t, :]
                    else:
                        for x in range(n2):
                            b[t, x] += a[t, x]
            for t in range(nprod):
                bt = b[t]
                for b2 in range(out.shape[3]):
                    c = bt[min(f * b2, n2 - 1)]
                    for k in range(1, f):
                        c += bt[min(f * b2 + k, n2 - 1)]
                    out[t, b0, b1, b2] = c * scale


@njit(nogil=True, cache=True)
def upsample_pass(c, zk0, zk1, zw, zomw, yk0, yk1, yw, yomw, xk0, xk1, xw, xomw, dz, dst):  # pragma: no cover
    """``dst`` = ``c`` interpolated along z (with ``dz``; else ``dst``'s planes are ``c``'s),
    then y, then x: along each axis, position p reads coarse voxels ``k0[p]`` and ``k1[p]``,
    their float32 products with the weights ``omw[p]`` and ``w[p]`` are summed in float32, as
    :func:`ml4paleo.compute.features._upsample_axis` computes axis by axis: so its values bit
    for bit. One plane of the z pass and one row of the y pass at a time, in buffers that stay
    in cache, where one pass per axis wrote each intermediate volume (a quarter and a half of
    ``dst`` at a factor of 2) to memory and read it back."""
    nz, ny, nx = dst.shape
    nyc, nxc = c.shape[1], c.shape[2]
    plane = np.empty((nyc, nxc), np.float32)
    row = np.empty(nxc, np.float32)
    for z in range(nz):
        if dz:
            lo, hi, a, b = c[zk0[z]], c[zk1[z]], zomw[z], zw[z]
            for v in range(nyc):
                for u in range(nxc):
                    plane[v, u] = lo[v, u] * a + hi[v, u] * b
        else:
            plane[:, :] = c[z]
        for y in range(ny):
            lo1, hi1, a1, b1 = plane[yk0[y]], plane[yk1[y]], yomw[y], yw[y]
            for u in range(nxc):
                row[u] = lo1[u] * a1 + hi1[u] * b1
            out = dst[z, y]
            for x in range(nx):
                out[x] = row[xk0[x]] * xomw[x] + row[xk1[x]] * xw[x]
