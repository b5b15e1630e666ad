"""The wire between the trusted grader and the driver in the sandbox: framed messages of JSON
plus arrays, and how values (arrays, numbers, tuples, the tutorial's layers) travel.

A message is a JSON header and a blob of arrays (``np.savez`` bytes, read back with
``allow_pickle=False``, so no Python object is ever unpickled on either side)::

    4 bytes: header length (big-endian) | header (UTF-8 JSON) | 8 bytes: blob length | blob

Values are encoded as JSON trees in which ``{"$array": key}`` names an array of the blob,
``{"$tuple": [...]}`` a tuple, ``{"$object": "module:Class", "state": {...}}`` an object of a
class that :data:`OBJECTS` knows how to rebuild (the tutorial's layers: their weights travel,
not their code), and ``{"$unsupported": "type name"}`` anything else. Both sides use only
this module, numpy and the standard library to read messages: nothing in a message can run
code.
"""

from __future__ import annotations

import importlib
import io
import json
import struct

import numpy as np

__all__ = ["send", "receive", "encode", "decode", "WireError", "OBJECTS", "MAX_MESSAGE"]

MAX_MESSAGE = 512 * 1024 * 1024  # bytes: larger than any exercise's arrays, far below memory
MAX_DEPTH = 4  # nesting of tuples/lists in one value: the exercises return at most pairs of tuples

# Classes whose objects may travel, and the attributes that make up their state: the tutorial
# layers (notebook 05 hands them to the student's train_step), rebuilt on the other side by
# their from_weights constructors from these arrays alone.
OBJECTS = {
    "cnnlib.tutorial.layers:Conv3x3": ("filters",),
    "cnnlib.tutorial.layers:MaxPool2": (),
    "cnnlib.tutorial.layers:Softmax": ("weights", "biases"),
}


class WireError(RuntimeError):
    """A message that does not follow the format (cut off, too large, not JSON)."""


# ---------------------------------------------------------------------------------- framing
def _read_exact(sock, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise WireError("the connection closed in the middle of a message")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def send(sock, header: dict, arrays: dict | None = None) -> None:
    head = json.dumps(header).encode("utf-8")
    blob = b""
    if arrays:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        blob = buf.getvalue()
    sock.sendall(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(blob)) + blob)


def receive(sock) -> tuple[dict, dict]:
    (n_head,) = struct.unpack(">I", _read_exact(sock, 4))
    if n_head > MAX_MESSAGE:
        raise WireError(f"a header of {n_head} bytes")
    try:
        header = json.loads(_read_exact(sock, n_head).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"a header that is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WireError("a header that is not a JSON object")
    (n_blob,) = struct.unpack(">Q", _read_exact(sock, 8))
    if n_blob > MAX_MESSAGE:
        raise WireError(f"arrays of {n_blob} bytes")
    arrays = {}
    if n_blob:
        try:
            with np.load(io.BytesIO(_read_exact(sock, n_blob)), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise WireError(f"arrays that numpy cannot read without pickles ({exc})") from None
    return header, arrays


# ---------------------------------------------------------------------------------- values
def encode(value, key: str, arrays: dict, depth: int = 0):
    """``value`` as a JSON tree; its arrays go into ``arrays`` under keys starting with ``key``."""
    if depth > MAX_DEPTH:
        return {"$unsupported": "values nested too deeply"}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            return {"$unsupported": f"an array of dtype {value.dtype}"}
        arrays[key] = np.ascontiguousarray(value)
        return {"$array": key}
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufc":
            return {"$unsupported": f"a numpy {value.dtype} scalar"}
        arrays[key] = np.asarray(value)
        return {"$array": key, "scalar": True}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"$float": repr(value)}  # JSON has no NaN or infinity
        return value
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, f"{key}.{i}", arrays, depth + 1)
                           for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, f"{key}.{i}", arrays, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: encode(v, f"{key}.{k}", arrays, depth + 1)
                          for k, v in value.items()}}
    name = f"{type(value).__module__}:{type(value).__qualname__}"
    if name in OBJECTS:
        state = {a: encode(getattr(value, a, None), f"{key}.{a}", arrays, depth + 1)
                 for a in OBJECTS[name]}
        return {"$object": name, "state": state}
    return {"$unsupported": type(value).__name__}


def decode(tree, arrays: dict, depth: int = 0):
    """The value a JSON tree from :func:`encode` stands for (arrays are fresh copies)."""
    if depth > MAX_DEPTH + 1:
        raise WireError("values nested too deeply")
    if isinstance(tree, list):
        return [decode(v, arrays, depth + 1) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$array" in tree:
        arr = np.array(arrays[tree["$array"]], copy=True)
        return arr[()] if tree.get("scalar") else arr
    if "$float" in tree:
        return float(tree["$float"])
    if "$tuple" in tree:
        return tuple(decode(v, arrays, depth + 1) for v in tree["$tuple"])
    if "$dict" in tree:
        return {k: decode(v, arrays, depth + 1) for k, v in tree["$dict"].items()}
    if "$object" in tree:
        state = {k: decode(v, arrays, depth + 1) for k, v in tree.get("state", {}).items()}
        return rebuild(tree["$object"], state)
    if "$unsupported" in tree:
        return Unsupported(str(tree["$unsupported"]))
    raise WireError(f"an unknown value {sorted(tree)[:3]}")


class Unsupported:
    """Stands for a returned value that cannot travel (an object of an unknown class)."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<a {self.what} (cannot be checked)>"


def rebuild(name: str, state: dict):
    """An object of the known class ``name`` holding ``state``, made by the class's
    ``from_weights`` constructor (or with no arguments when it has no state)."""
    if name not in OBJECTS:
        raise WireError(f"objects of {name} cannot travel")
    module_name, _, cls_name = name.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        return cls.from_weights(**state) if state else cls()
    except (TypeError, ValueError) as exc:
        raise WireError(f"a {cls_name} could not be rebuilt ({exc})") from None


