"""Pipelines over paths: convert, train, segment, mesh, export.

Each takes paths, keyword options and a ``progress`` callback, streams chunk by chunk, and
writes its output atomically. None imports flask or the job store.
"""
