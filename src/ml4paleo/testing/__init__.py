"""Generated volumes with known truth, for the test suite and the benchmarks (like
``zarr.testing``): nothing here is used by the product itself."""
