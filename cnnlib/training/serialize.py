"""Save and load a Sequential model: its architecture and its parameters in one ``.npz`` file.

File format (version 1), an uncompressed ``np.savez`` archive read with ``allow_pickle=False``
(so loading a file never runs code from it):

    ``__format__``          the string ``"cnnlib-model"``
    ``__format_version__``  the integer 1
    ``__architecture__``    JSON: ``{"layers": [{"type": "Conv2D", "config": {...}}, ...],
                            "metadata": {...}}``; ``config`` holds the constructor arguments
                            (read back from the layer's attributes of the same names)
    ``param:<key>``         one array per entry of ``model.params`` (``"param:0.W"``, ...),
                            stored in its own dtype, so a round trip is exact

A file with another format version, a missing entry, a shape that does not fit the
architecture, or bytes that are not an ``.npz`` archive raises :class:`cnnlib.errors.DataError`
naming the file and what is wrong.
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile

import numpy as np

import cnnlib.layers as layers_module
from cnnlib.errors import DataError
from cnnlib.layers import Sequential
from cnnlib.layers.base import Layer

__all__ = ["save_model", "load_model", "FORMAT", "FORMAT_VERSION", "architecture_of"]

FORMAT = "cnnlib-model"
FORMAT_VERSION = 1
# Constructor arguments that only decide the *initial* values, which the saved params replace.
_INIT_ONLY = {"self", "rng", "weight_scale"}


def _layer_classes() -> dict[str, type]:
    """The layer classes a file may name: those exported by :mod:`cnnlib.layers`."""
    return {name: obj for name, obj in vars(layers_module).items()
            if isinstance(obj, type) and issubclass(obj, Layer)}


def _jsonable(value):
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _layer_entry(index: int, layer, classes: dict[str, type]) -> dict:
    # An accelerated layer (cnnlib.fast) subclasses or wraps a reference layer: save the
    # reference class that the file can rebuild.
    cls = next((c for c in type(layer).__mro__ if classes.get(c.__name__) is c), None)
    if cls is None:
        raise TypeError(
            f"save_model: layer {index} ({type(layer).__name__}) is not a cnnlib layer; only "
            f"models made of cnnlib.layers classes can be saved with their architecture"
        )
    config = {}
    for name, par in inspect.signature(cls.__init__).parameters.items():
        if name in _INIT_ONLY or par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if not hasattr(layer, name):
            raise TypeError(
                f"save_model: layer {index} ({cls.__name__}) has no attribute {name!r} to "
                f"record its constructor argument of that name"
            )
        config[name] = _jsonable(getattr(layer, name))
    return {"type": cls.__name__, "config": config}


def architecture_of(model) -> list[dict]:
    """The JSON-able description of ``model``'s layers (what :func:`save_model` stores)."""
    classes = _layer_classes()
    return [_layer_entry(i, layer, classes) for i, layer in enumerate(model.layers)]


def save_model(path, model, metadata: dict | None = None) -> str:
    """Write ``model`` (a :class:`cnnlib.layers.Sequential` of cnnlib layers) to ``path``.

    ``metadata``: any JSON-able dict stored alongside (recipe, accuracy, ...); read it back
    as ``model.metadata`` after :func:`load_model`. Returns the path written (``.npz`` is
    appended when missing, as ``np.savez`` does).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arch = {"layers": architecture_of(model), "metadata": metadata or {}}
    try:
        text = json.dumps(arch)
    except TypeError as exc:
        raise TypeError(f"save_model: metadata must be JSON-serialisable ({exc})") from None
    arrays = {f"param:{key}": np.asarray(value) for key, value in model.params.items()}
    try:
        np.savez(
            path,
            __format__=np.array(FORMAT),
            __format_version__=np.array(FORMAT_VERSION),
            __architecture__=np.array(text),
            **arrays,
        )
    except OSError as exc:
        raise DataError(f"save_model: cannot write {path}: {exc}") from exc
    return path


def load_model(path):
    """Rebuild the model saved in ``path`` by :func:`save_model`; returns a Sequential whose
    parameters equal the saved ones exactly. ``model.metadata`` holds the saved metadata."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"load_model: no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"load_model: {path} is not a readable cnnlib model file (.npz); it may be "
            f"truncated or corrupt ({type(exc).__name__}: {exc}). Save it again with "
            f"cnnlib.training.save_model."
        ) from None
    fmt = contents.get("__format__")
    if fmt is None or str(fmt) != FORMAT:
        raise DataError(
            f"load_model: {path} is an .npz archive but not a cnnlib model file "
            f"(no '__format__' entry saying {FORMAT!r}). Was it written by np.savez directly?"
        )
    version = contents.get("__format_version__")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise DataError(f"load_model: {path} has no readable format version") from None
    if version != FORMAT_VERSION:
        raise DataError(
            f"load_model: {path} uses model file format version {version}; this cnnlib reads "
            f"version {FORMAT_VERSION}. Use the cnnlib version that wrote it (a newer one, if "
            f"the number is higher) or save the model again."
        )
    try:
        arch = json.loads(str(contents["__architecture__"]))
        entries = arch["layers"]
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"load_model: {path} has a damaged architecture entry ({exc})") from None

    classes = _layer_classes()
    layers = []
    for i, entry in enumerate(entries):
        cls = classes.get(entry.get("type"))
        if cls is None:
            raise DataError(
                f"load_model: {path} layer {i} has type {entry.get('type')!r}, which this "
                f"cnnlib does not have"
            )
        config = dict(entry.get("config", {}))
        if "dtype" in config:
            config["dtype"] = np.dtype(config["dtype"])
        try:
            layers.append(cls(**config))
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"load_model: {path} layer {i} ({cls.__name__}) cannot be rebuilt from "
                f"{config}: {exc}"
            ) from None
    model = Sequential(layers)
    saved_keys = {k[len("param:"):] for k in contents if k.startswith("param:")}
    expected = set(model.params.keys())
    if saved_keys != expected:
        raise DataError(
            f"load_model: {path} holds parameters {sorted(saved_keys)} but its architecture "
            f"needs {sorted(expected)}"
        )
    for key, arr in model.params.items():
        saved = contents[f"param:{key}"]
        if saved.shape != arr.shape:
            raise DataError(
                f"load_model: {path} parameter {key!r} has shape {saved.shape}, the "
                f"architecture needs {arr.shape}"
            )
        if saved.dtype != arr.dtype:
            raise DataError(
                f"load_model: {path} parameter {key!r} has dtype {saved.dtype}, the "
                f"architecture needs {arr.dtype}"
            )
        arr[...] = saved
    model.metadata = arch.get("metadata", {})
    return model
