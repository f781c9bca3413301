"""Volume I/O: readers for scanner output, the OME-Zarr writer/reader, exports."""
