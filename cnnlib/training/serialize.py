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
from cnnlib.i18n import tr
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
        raise TypeError(tr(
            "save_model: layer {index} ({type}) is not a cnnlib layer; only models made of "
            "cnnlib.layers classes can be saved with their architecture", index=index,
            type=type(layer).__name__))
    config = {}
    for name, par in inspect.signature(cls.__init__).parameters.items():
        if name in _INIT_ONLY or par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if not hasattr(layer, name):
            raise TypeError(tr(
                "save_model: layer {index} ({type}) has no attribute {name} to record its "
                "constructor argument of that name", index=index, type=cls.__name__,
                name=repr(name)))
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
        raise TypeError(tr("save_model: metadata must be JSON-serialisable ({error})",
                           error=exc)) from None
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
        raise DataError(tr("save_model: cannot write {path}: {error}", path=path,
                           error=exc)) from exc
    return path


def load_model(path):
    """Rebuild the model saved in ``path`` by :func:`save_model`; returns a Sequential whose
    parameters equal the saved ones exactly. ``model.metadata`` holds the saved metadata."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(tr("load_model: no such file: {path}", path=path))
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(tr(
            "load_model: {path} is not a readable cnnlib model file (.npz); it may be "
            "truncated or corrupt ({kind}: {error}). Save it again with "
            "cnnlib.training.save_model.", path=path, kind=type(exc).__name__, error=exc)
        ) from None
    fmt = contents.get("__format__")
    if fmt is None or str(fmt) != FORMAT:
        raise DataError(tr(
            "load_model: {path} is an .npz archive but not a cnnlib model file (no "
            "'__format__' entry saying {format}). Was it written by np.savez directly?",
            path=path, format=repr(FORMAT)))
    version = contents.get("__format_version__")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise DataError(tr("load_model: {path} has no readable format version",
                           path=path)) from None
    if version != FORMAT_VERSION:
        raise DataError(tr(
            "load_model: {path} uses model file format version {version}; this cnnlib reads "
            "version {expected}. Use the cnnlib version that wrote it (a newer one, if the "
            "number is higher) or save the model again.", path=path, version=version,
            expected=FORMAT_VERSION))
    try:
        arch = json.loads(str(contents["__architecture__"]))
        entries = arch["layers"]
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(tr("load_model: {path} has a damaged architecture entry ({error})",
                           path=path, error=exc)) from None

    classes = _layer_classes()
    layers = []
    for i, entry in enumerate(entries):
        cls = classes.get(entry.get("type"))
        if cls is None:
            raise DataError(tr(
                "load_model: {path} layer {i} has type {type}, which this cnnlib does not have",
                path=path, i=i, type=repr(entry.get("type"))))
        config = dict(entry.get("config", {}))
        if "dtype" in config:
            config["dtype"] = np.dtype(config["dtype"])
        try:
            layers.append(cls(**config))
        except (TypeError, ValueError) as exc:
            raise DataError(tr(
                "load_model: {path} layer {i} ({type}) cannot be rebuilt from {config}: "
                "{error}", path=path, i=i, type=cls.__name__, config=config, error=exc)
            ) from None
    model = Sequential(layers)
    saved_keys = {k[len("param:"):] for k in contents if k.startswith("param:")}
    expected = set(model.params.keys())
    if saved_keys != expected:
        raise DataError(tr(
            "load_model: {path} holds parameters {saved} but its architecture needs "
            "{expected}", path=path, saved=sorted(saved_keys), expected=sorted(expected)))
    for key, arr in model.params.items():
        saved = contents[f"param:{key}"]
        if saved.shape != arr.shape:
            raise DataError(tr(
                "load_model: {path} parameter {key} has shape {shape}, the architecture needs "
                "{expected}", path=path, key=repr(key), shape=saved.shape, expected=arr.shape))
        if saved.dtype != arr.dtype:
            raise DataError(tr(
                "load_model: {path} parameter {key} has dtype {dtype}, the architecture needs "
                "{expected}", path=path, key=repr(key), dtype=saved.dtype, expected=arr.dtype))
        arr[...] = saved
    model.metadata = arch.get("metadata", {})
    return model
