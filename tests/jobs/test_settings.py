"""Settings: defaults, then ML4PALEO_* environment, then explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4paleo.errors import InputError
from ml4paleo.settings import Settings


def test_defaults_then_environment_then_overrides(tmp_path):
    assert Settings.from_env({}).port == 5000 and Settings.from_env({}).data == Path("./data")
    env = {"ML4PALEO_PORT": "6000", "ML4PALEO_DATA": str(tmp_path), "ML4PALEO_CORS_ORIGINS": "http://a, http://b",
           "ML4PALEO_LEASE_SECONDS": "2.5", "ML4PALEO_TOKEN": ""}
    s = Settings.from_env(env)
    assert (s.port, s.data, s.cors_origins, s.lease_seconds, s.token) == (6000, tmp_path, ("http://a", "http://b"), 2.5, "")
    s = Settings.from_env(env, port=7000, data=None)  # None: an unset CLI option overrides nothing
    assert s.port == 7000 and s.data == tmp_path
    assert s.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'ml4paleo.sqlite3'}"
    assert Settings.from_env({"ML4PALEO_DATABASE_URL": "postgresql://h/db"}).sqlalchemy_url == "postgresql://h/db"


def test_round_trip_through_the_environment(tmp_path):
    s = Settings.from_env({}, data=tmp_path, cors_origins="*", max_attempts=5, train_features='{"sigmas": [1]}')
    assert Settings.from_env(s.to_env()) == s.replace(data=tmp_path.resolve())


@pytest.mark.parametrize("env, word", [({"ML4PALEO_PORT": "http"}, "ML4PALEO_PORT"),
                                       ({"ML4PALEO_POLL_SECONDS": "0"}, "poll_seconds"),
                                       ({"ML4PALEO_MAX_ATTEMPTS": "-1"}, "max_attempts")])
def test_bad_values_name_the_setting(env, word):
    with pytest.raises(InputError, match=word):
        Settings.from_env(env)


def test_unknown_override_is_an_error():
    with pytest.raises(InputError, match="unknown setting 'prot'"):
        Settings.from_env({}, prot=1)
