"""ml4paleo: segment fossils in X-ray tomography scans.

The library is the core; the CLI (``ml4paleo``) and the web app call the same functions.
Array axes are always (z, y, x), z being the slice index.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
