"""Fixtures of the API tests: a real server per test module (see ``apiserver.py``)."""

from __future__ import annotations

import pytest

from apiserver import Server, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    """A server with one runner of each kind, shared by the tests of a module."""
    srv = start_server(tmp_path_factory.mktemp("data"))
    yield srv
    stop_server(srv)
