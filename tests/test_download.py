"""The real download path (pooch over HTTP) against loopback servers on 127.0.0.1.

The servers serve IDX files the tests write; their SHA-256 is put into the checksum table
for the test. One mirror serves wrong bytes, one answers HTTP 500, one refuses connections.
Nothing here reaches the internet.
"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mnist
import numpy as np
import pytest

from cnnlib.data import FILES, KNOWN_SHA256, load_mnist, sha256_of, use_with_mnist_package
from cnnlib.data.idx import write_idx
from cnnlib.errors import DataError


class Mirror:
    """A loopback HTTP server: `files` maps a request path to bytes, an HTTP error status,
    or "hang" (no answer)."""

    def __init__(self):
        self.files: dict[str, bytes | int | str] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the name http.server calls)
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path, 404)
                if body == "hang":  # accept the request, then never answer in time
                    time.sleep(6)  # longer than any read timeout the tests set
                    return
                if isinstance(body, int):
                    self.send_error(body)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep stderr clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # a hanging handler must not delay the shutdown
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mirrors():
    started = []

    def start():
        started.append(Mirror())
        return started[-1]

    yield start
    for mirror in started:
        mirror.stop()


def refused_url():
    """A loopback URL where nothing listens: the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed (conftest switches them off), never through a proxy, and the
    `mnist` package settings restored afterwards."""
    monkeypatch.delenv("CNNLIB_OFFLINE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(mnist, "temporary_dir", mnist.temporary_dir)
    monkeypatch.setattr(mnist, "datasets_url", mnist.datasets_url)
    return tmp_path / "cache"


@pytest.fixture
def official(tmp_path, monkeypatch):
    """Generated 'official' files: {name: bytes}, the arrays, and their checksums in the
    table for both datasets."""
    rng = np.random.default_rng(42)
    arrays = [
        rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        (np.arange(50) % 10).astype(np.uint8),
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        (np.arange(20) % 10).astype(np.uint8),
    ]
    blobs = {}
    for name, array in zip(FILES, arrays, strict=True):
        path = write_idx(tmp_path / "src" / name, array)
        blobs[name] = path.read_bytes()
        for dataset in ("mnist", "fashion"):
            monkeypatch.setitem(KNOWN_SHA256[dataset], name, sha256_of(path))
    return blobs, arrays


def serve(mirror, blobs, prefix="/mnist/"):
    for name, blob in blobs.items():
        mirror.files[prefix + name] = blob
    return mirror.url + prefix


def assert_arrays(result, arrays):
    for got, want in zip(result, arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_download_verifies_caches_and_then_reuses_the_cache(mirrors, online, official, capsys):
    blobs, arrays = official
    mirror = mirrors()
    result = load_mnist(cache_dir=online, mirrors=[serve(mirror, blobs)])
    assert result.source == "download"
    assert_arrays(result, arrays)
    assert sorted(mirror.requests) == sorted("/mnist/" + n for n in FILES)
    for name in FILES:
        assert (online / "mnist" / name).read_bytes() == blobs[name]
    out, err = capsys.readouterr()
    assert err == ""  # progress and messages go to stdout only
    assert "downloading " + mirror.url in out and "SHA-256 verified" in out
    # The second load comes from the verified cache, without a request.
    again = load_mnist(cache_dir=online, mirrors=[mirror.url + "/mnist/"])
    assert again.source == "cache"
    assert_arrays(again, arrays)
    assert len(mirror.requests) == 4
    # The mnist package of the tutorials, once asked to, reads the downloaded files in place.
    assert use_with_mnist_package(cache_dir=online, mirrors=[mirror.url + "/mnist/"],
                                  verbose=False) == online / "mnist"
    assert len(mirror.requests) == 4
    assert Path(mnist.temporary_dir()) == online / "mnist"
    np.testing.assert_array_equal(mnist.train_images(), arrays[0])


def test_wrong_bytes_are_rejected_and_the_next_mirror_is_used(mirrors, online, official):
    blobs, arrays = official
    evil, good = mirrors(), mirrors()
    tampered = dict(blobs)
    # A valid gz IDX file of the right shape whose checksum is wrong: only SHA-256 can tell.
    tampered[FILES[2]] = write_idx(online.parent / "t.gz", arrays[2] // 2).read_bytes()
    result = load_mnist(cache_dir=online, mirrors=[serve(evil, tampered), serve(good, blobs)],
                        verbose=False)
    assert result.source == "download"
    assert_arrays(result, arrays)
    assert good.requests == ["/mnist/" + FILES[2]]  # only the rejected file came from here
    assert any("SHA-256 does not match" in note and evil.url in note for note in result.notes)
    assert (online / "mnist" / FILES[2]).read_bytes() == blobs[FILES[2]]
    assert sorted(p.name for p in (online / "mnist").iterdir()) == sorted(FILES)


def test_http_500_and_refused_connections_move_on_to_the_next_mirror(mirrors, online,
                                                                     official):
    blobs, arrays = official
    broken, good = mirrors(), mirrors()
    for name in FILES:
        broken.files["/mnist/" + name] = 500
    result = load_mnist(cache_dir=online, verbose=False,
                        mirrors=[broken.url + "/mnist/", refused_url(), serve(good, blobs)])
    assert result.source == "download"
    assert_arrays(result, arrays)
    assert len(broken.requests) == 4 and len(good.requests) == 4
    assert any("HTTP 500" in note for note in result.notes)
    assert any("cannot connect" in note for note in result.notes)


def test_all_mirrors_failing_falls_back_to_the_offline_subset(mirrors, online, official,
                                                               capsys):
    broken = mirrors()
    broken.files["/mnist/" + FILES[0]] = 500
    result = load_mnist(cache_dir=online, mirrors=[broken.url + "/mnist/", refused_url()])
    assert result.source == "subset" and len(result.train_labels) == 4000
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1 and "offline subset" in out   # one line, no mirror noise
    assert "HTTP 500" in result.details() and "cannot connect" in result.details()


def test_fashion_with_failing_mirrors_is_a_clear_error(mirrors, online, official, monkeypatch):
    from cnnlib import data

    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", [])
    broken = mirrors()
    broken.files["/fashion/" + FILES[0]] = 503
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        load_mnist("fashion", cache_dir=online, mirrors=[broken.url + "/fashion/"],
                   verbose=False)
    assert "HTTP 503" in str(info.value)


def test_a_damaged_cached_file_is_fetched_again(mirrors, online, official):
    blobs, arrays = official
    mirror = mirrors()
    url = serve(mirror, blobs)
    load_mnist(cache_dir=online, mirrors=[url], verbose=False)
    damaged = online / "mnist" / FILES[0]
    damaged.write_bytes(blobs[FILES[0]][: len(blobs[FILES[0]]) // 2])  # cut short
    mirror.requests.clear()
    result = load_mnist(cache_dir=online, mirrors=[url], verbose=False)
    assert result.source == "download"
    assert mirror.requests == ["/mnist/" + FILES[0]]
    assert damaged.read_bytes() == blobs[FILES[0]]
    assert_arrays(result, arrays)
    assert any("failed its SHA-256 check" in note for note in result.notes)


def test_mirrors_from_the_environment(mirrors, online, official, monkeypatch):
    blobs, arrays = official
    mirror = mirrors()
    monkeypatch.setenv("CNNLIB_MIRRORS", f"{refused_url()} {serve(mirror, blobs, '/m/')}")
    result = load_mnist(cache_dir=online, verbose=False)
    assert result.source == "download" and len(mirror.requests) == 4
    assert_arrays(result, arrays)


def test_offline_switch_and_download_false_make_no_request(mirrors, online, official,
                                                           monkeypatch):
    blobs, arrays = official
    mirror = mirrors()
    url = serve(mirror, blobs)
    assert load_mnist(cache_dir=online, mirrors=[url], download=False,
                      verbose=False).source == "subset"
    monkeypatch.setenv("CNNLIB_OFFLINE", "1")
    assert load_mnist(cache_dir=online, mirrors=[url], verbose=False).source == "subset"
    assert mirror.requests == []


def test_fashion_downloads_into_its_own_cache_folder(mirrors, online, official, monkeypatch):
    from cnnlib import data

    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", [])
    blobs, arrays = official
    mirror = mirrors()
    result = load_mnist("fashion", cache_dir=online, verbose=False,
                        mirrors=[serve(mirror, blobs, "/fashion/")])
    assert result.source == "download" and result.location == online / "fashion"
    assert_arrays(result, arrays)


def test_a_mirror_that_never_answers_times_out(mirrors, online, official, monkeypatch):
    from cnnlib.data import download

    # seconds, short for the test; the hanging mirror never answers, so the read timeout need
    # not be tight (0.3 s also timed out the good loopback mirror on a loaded 2-core CI run)
    monkeypatch.setattr(download, "DOWNLOAD_TIMEOUT", (2, 1.5))
    blobs, arrays = official
    slow, good = mirrors(), mirrors()
    slow.files["/mnist/" + FILES[0]] = "hang"
    result = load_mnist(cache_dir=online, verbose=False,
                        mirrors=[slow.url + "/mnist/", serve(good, blobs)])
    assert result.source == "download", result.notes
    assert_arrays(result, arrays)
    assert any("did not answer in time" in note for note in result.notes)
