"""Shared test set-up: no test touches the network, the user's cache, or ../shared/."""

import os
import tempfile


def pytest_configure(config):
    # One private, initially empty cnnlib cache per test process (xdist worker), shared by the
    # notebook kernels the tests start (they inherit the environment). Tests of the cache
    # itself pass their own cache_dir.
    os.environ["CNNLIB_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnlib-test-cache-")
    # Never download from the internet in tests; the download tests use a loopback server
    # and switch this off themselves.
    os.environ["CNNLIB_OFFLINE"] = "1"
    os.environ.pop("CNNLIB_DATA_DIR", None)
    # Matplotlib must never try to open a window in tests.
    os.environ.setdefault("MPLBACKEND", "Agg")
