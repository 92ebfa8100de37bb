"""The settings refuse to start anything but a developer's machine without its secrets."""

from __future__ import annotations

import pytest

from chunfeng.settings import DEV_SECRET, Settings

KEY = "0123456789abcdef" * 2


@pytest.mark.parametrize("environment", ["production", "Production", "PRODUCTION", "staging", "test", " prod "])
def test_every_environment_but_local_needs_a_data_key_and_a_secret(environment):
    with pytest.raises(ValueError, match="CHUNFENG_DATA_KEY must be set"):
        Settings(environment=environment, secret_key="s" * 64)
    with pytest.raises(ValueError, match="CHUNFENG_SECRET_KEY must be set"):
        Settings(environment=environment, secret_key=DEV_SECRET, data_key=KEY)
    with pytest.raises(ValueError, match="CHUNFENG_SECRET_KEY must be set"):  # the example file's blank line
        Settings(environment=environment, secret_key="  ", data_key=KEY)
    assert not Settings(environment=environment, secret_key="s" * 64, data_key=KEY).is_local


@pytest.mark.parametrize("environment", ["local", "Local", "LOCAL"])
def test_local_runs_with_the_development_defaults(environment):
    settings = Settings(environment=environment)
    assert settings.is_local and settings.secret_key == DEV_SECRET and len(settings.effective_data_key) == 32
