"""Shared test set-up: no test touches the network, the user's cache, or ../shared/."""

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cnnlib cache and never downloads from the internet."""
    cache = tmp_path_factory.mktemp("cnnlib-cache")
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(cache))
    monkeypatch.setenv("CNNLIB_OFFLINE", "1")  # download mirrors off unless a test sets them
    monkeypatch.delenv("CNNLIB_DATA_DIR", raising=False)
    yield


def pytest_configure(config):
    # Matplotlib must never try to open a window in tests.
    os.environ.setdefault("MPLBACKEND", "Agg")
