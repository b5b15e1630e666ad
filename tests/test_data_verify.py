"""A folder's IDX files checked against the official set by the SHA-256 of their decompressed
content: re-compressed copies recognised, changed files named and refused, "your own files"
still loading. Small IDX files the tests write, with the catalogue's official content swapped
for theirs (never ../shared/); plus two headers that used to pass or fail raw: sizes that
overflow int64, and a folder of 0 images."""

import gzip
import hashlib
import struct

import numpy as np
import pytest

from cnnlib.data import FILES, OFFICIAL_CONTENT, SYSTEM_DIRS, load_mnist, load_test_set
from cnnlib.data import files as data_files
from cnnlib.data.catalog import Content
from cnnlib.data.idx import encode_idx, parse_idx, read_idx, write_idx
from cnnlib.errors import DataError
from cnnlib.i18n import using


def small_arrays(seed=0, n_train=30, n_test=10):
    rng = np.random.default_rng(seed)
    out = []
    for n in (n_train, n_test):
        out.append(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        out.append((np.arange(n) % 10).astype(np.uint8))
    return out


@pytest.fixture
def official(monkeypatch):
    """Small arrays whose decompressed IDX bytes count as the official MNIST content."""
    arrays = small_arrays(seed=21)
    for name, array in zip(FILES, arrays, strict=True):
        raw = encode_idx(array)
        monkeypatch.setitem(OFFICIAL_CONTENT["mnist"], name,
                            Content(hashlib.sha256(raw).hexdigest(), len(raw)))
    return arrays


def write_gz(path, array, level):
    path.write_bytes(gzip.compress(encode_idx(array), compresslevel=level, mtime=12345))
    return path


def write_folder(folder, arrays, how):
    """The four files in `folder`: "gz1"/"gz9" (gzip at that level), "raw", or "mixed"."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, array) in enumerate(zip(FILES, arrays, strict=True)):
        kind = ("gz1", "raw", "gz9", "raw")[i] if how == "mixed" else how
        if kind == "raw":
            write_idx(folder / name[:-3], array, compress=False)
        else:
            write_gz(folder / name, array, int(kind[2:]))
    return folder


# ----------------------------------------------------------------------------- the official set
@pytest.mark.parametrize("how", ["gz1", "gz9", "raw", "mixed"])
def test_recompressed_official_files_are_recognised(tmp_path, official, how, capsys):
    folder = write_folder(tmp_path / "d", official, how)
    if how == "gz1":  # other .gz bytes than write_idx's level 6: only the content is the same
        level6 = write_idx(tmp_path / "ref.gz", official[0]).read_bytes()
        assert (folder / FILES[0]).read_bytes() != level6
    result = load_mnist(data_dir=folder)
    for got, want in zip(result, official, strict=True):
        np.testing.assert_array_equal(got, want)
    assert result.source == "data_dir" and result.official
    assert result.description.startswith("official MNIST, verified")
    assert str(folder) in result.description
    out = capsys.readouterr().out
    assert out == f"cnnlib: {result.description}\n"  # the notice: official set, verified


def test_the_notice_is_quiet_when_not_verbose(tmp_path, official, capsys):
    assert load_mnist(data_dir=write_folder(tmp_path, official, "gz1"), verbose=False).official
    assert capsys.readouterr() == ("", "")


def test_each_file_is_hashed_once(tmp_path, official, monkeypatch):
    calls = []
    real = hashlib.sha256

    def counting(data=b""):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(data_files.hashlib, "sha256", counting)
    load_mnist(data_dir=write_folder(tmp_path, official, "mixed"), verbose=False)
    assert sorted(calls) == sorted(OFFICIAL_CONTENT["mnist"][n].size for n in FILES)


# ----------------------------------------------------------------------------- changed files
def changed_copy(folder, official, index=2, byte=5000):
    """`folder` with the official files, one byte of file `index` changed (a valid IDX file)."""
    write_folder(folder, official, "gz9")
    raw = bytearray(encode_idx(official[index]))
    raw[byte] ^= 0x01  # one pixel (past the 16-byte header): the header stays valid
    path = folder / FILES[index]
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def test_one_changed_byte_is_named_and_refused(tmp_path, official, capsys):
    bad = changed_copy(tmp_path / "d", official)
    assert read_idx(bad).shape == official[2].shape  # a perfectly valid IDX file
    with pytest.raises(DataError) as info:
        load_mnist(data_dir=tmp_path / "d")
    message = str(info.value)
    assert str(bad) in message
    assert not any(str(tmp_path / "d" / n) in message for n in FILES if n != FILES[2])
    assert "not their content" in message and "SHA-256" in message
    want = OFFICIAL_CONTENT["mnist"][FILES[2]].sha256[:12]
    assert want in message  # the official digest, to compare
    assert 'load_mnist("mnist", data_dir=..., own_files=True)' in message  # what to do
    assert capsys.readouterr().out == ""  # nothing claims it is official


def test_every_changed_file_is_named(tmp_path, official):
    changed_copy(tmp_path, official, index=2)
    raw = bytearray(encode_idx(official[1]))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed, still 0-9
    (tmp_path / FILES[1]).write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as info:
        load_mnist(data_dir=tmp_path)
    lines = [line for line in str(info.value).splitlines() if line.startswith("  - ")]
    assert [line.split(":")[0].strip("- ") for line in lines] == [
        str(tmp_path / FILES[1]), str(tmp_path / FILES[2])]


def test_own_files_loads_a_changed_folder_without_calling_it_official(tmp_path, official,
                                                                        capsys):
    changed_copy(tmp_path, official)
    result = load_mnist(data_dir=tmp_path, own_files=True)
    assert not result.official and result.source == "data_dir"
    assert "your own files" in result.description
    assert not result.description.startswith("official")
    assert not np.array_equal(result.test_images, official[2])  # the changed byte is there
    assert capsys.readouterr().out == ""


def test_own_files_needs_a_folder(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        load_mnist(cache_dir=tmp_path, own_files=True)


def test_files_of_other_sizes_are_your_own_files_and_not_hashed(tmp_path, monkeypatch, capsys):
    # The real catalogue: small files cannot be the official ones, and are not hashed.
    monkeypatch.setattr(data_files.hashlib, "sha256", None)  # any call would fail
    arrays = small_arrays(seed=22)
    result = load_mnist(data_dir=write_folder(tmp_path, arrays, "gz1"))
    assert not result.official
    assert result.description == (f"MNIST from the folder {tmp_path} (your own files, not "
                                  "verified as the official set): 30 train / 10 test")
    assert capsys.readouterr().out == ""


def test_the_other_datasets_official_files_are_recognised(tmp_path, monkeypatch):
    arrays = small_arrays(seed=23)
    for name, array in zip(FILES, arrays, strict=True):
        raw = encode_idx(array)
        digest = hashlib.sha256(raw).hexdigest()
        monkeypatch.setitem(OFFICIAL_CONTENT["fashion"], name, Content(digest, len(raw)))
        # MNIST's official files: the same sizes, other content
        monkeypatch.setitem(OFFICIAL_CONTENT["mnist"], name, Content("0" * 64, len(raw)))
    write_folder(tmp_path, arrays, "raw")
    assert load_mnist("fashion", data_dir=tmp_path, verbose=False).official
    with pytest.raises(DataError) as info:
        load_mnist("mnist", data_dir=tmp_path)
    assert str(info.value).count('this is the official Fashion-MNIST file (read it with '
                                 'load_mnist("fashion", ...))') == 4


def test_a_changed_file_in_the_system_folder_is_refused(tmp_path, monkeypatch):
    arrays = small_arrays(seed=24)
    for name, array in zip(FILES, arrays, strict=True):
        raw = encode_idx(array)
        monkeypatch.setitem(OFFICIAL_CONTENT["fashion"], name,
                            Content(hashlib.sha256(raw).hexdigest(), len(raw)))
    monkeypatch.setitem(SYSTEM_DIRS, "fashion", [tmp_path / "sys"])
    write_folder(tmp_path / "sys", arrays, "gz9")
    result = load_mnist("fashion", cache_dir=tmp_path / "cache", verbose=False)
    assert result.source == "system" and result.official
    assert result.description.startswith("official Fashion-MNIST, verified")
    bad = changed_copy(tmp_path / "sys", arrays, index=0)
    with pytest.raises(DataError, match="apt-get install --reinstall") as info:
        load_mnist("fashion", cache_dir=tmp_path / "cache")
    assert str(bad) in str(info.value)


def test_the_refusal_speaks_chinese(tmp_path, official):
    bad = changed_copy(tmp_path, official)
    with using("zh"), pytest.raises(DataError) as info:
        load_mnist(data_dir=tmp_path)
    message = str(info.value)
    assert str(bad) in message and "own_files=True" in message
    assert "not their content" not in message and "官方" in message


# ----------------------------------------------------------------------------- damaged headers
@pytest.mark.parametrize("sizes", [(2**31, 2**31, 4), (2**32 - 1, 2**32 - 1),
                                   (2**32 - 1,) * 3])
def test_header_sizes_overflowing_int64_are_a_data_error(tmp_path, sizes):
    # (2**31, 2**31, 4) wraps to 0 in int64: with no data it used to reach a raw ValueError
    header = struct.pack(f">HBB{len(sizes)}I", 0, 0x08, len(sizes), *sizes)
    with pytest.raises(DataError, match="damaged header"):
        parse_idx(header)
    write_folder(tmp_path, small_arrays(seed=25), "gz9")
    bad = tmp_path / FILES[0]
    bad.write_bytes(gzip.compress(header + bytes(784)))
    with pytest.raises(DataError, match="damaged header") as info:
        load_mnist(data_dir=tmp_path)
    assert str(bad) in str(info.value) and "download it again" in str(info.value)


def test_a_folder_with_no_images_is_a_data_error(tmp_path):
    arrays = [np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)] * 2
    write_folder(tmp_path, arrays, "gz9")
    with pytest.raises(DataError, match="holds no images") as info:
        load_mnist(data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / FILES[0]) in message and "(0, 28, 28)" in message
    assert "Replace it" in message
    with pytest.raises(DataError, match="holds no images") as info:
        load_test_set(tmp_path)
    assert str(tmp_path / FILES[2]) in str(info.value)
