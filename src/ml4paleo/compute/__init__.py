"""Pure array code by topic (numpy in, numpy out, no I/O): ``features`` (the filter bank),
``regions`` (features of a region with its halo), ``mesh`` (chunked marching cubes, welding,
simplification), ``postprocess``, ``downsample`` and ``display``."""
