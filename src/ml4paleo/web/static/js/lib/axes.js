// Volume axes (z, y, x) and the plane of a slice across each of them.

/** Index of each axis in a (z, y, x) shape or voxel size. */
export const AXIS_INDEX = { z: 0, y: 1, x: 2 };

/** For a slice across `axis`: which volume axes run across (u, columns) and down (v, rows) the
 * image, as the server renders `slice/<axis>/<index>.png`. */
export const PLANE = { z: { u: "x", v: "y" }, y: { u: "x", v: "z" }, x: { u: "y", v: "z" } };
