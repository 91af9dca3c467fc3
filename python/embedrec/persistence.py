"""Saving and loading models: one file, no pickle.

Layout (all integers little-endian):

    8 bytes   magic b"EMBEDREC"
    4 bytes   format version (uint32)
    8 bytes   header length H (uint64)
    H bytes   header, UTF-8 JSON: model class, hyper-parameters, column names, history, and
              for every array its name, dtype, shape, offset and length in the payload
    ...       payload: the arrays, each starting at a multiple of 8 bytes
    32 bytes  SHA-256 of everything before it

Raw ids are stored as int64 or float64 arrays when they are numbers, as UTF-8 with offsets
when they are strings, and as a JSON list otherwise (booleans, mixed types). ``load`` checks
the magic, the version and the checksum before it reads anything else, so a truncated,
altered or foreign file is an error, never a wrong model. ``save`` writes a temporary file in
the same folder and renames it into place, so a crash never leaves half a file.
"""

import hashlib
import io
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import _registry
from ._interrupts import deferred as deferred_interrupts
from .errors import EmbedrecError, InvalidArgumentError

MAGIC = b"EMBEDREC"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32
#: Bytes written between two looks at a held Ctrl-C.
_WRITE_CHUNK = 16 << 20


class ModelFileError(EmbedrecError, ValueError):
    """A file is not an embedrec model, is of a newer format, or is damaged."""


def _integer_array(index):
    """Integer ids as int64, or uint64 when some lie beyond int64 (and none below 0); None when
    neither holds them all (then they are stored as a JSON list of Python ints)."""
    if index.dtype == np.uint64:
        return np.asarray(index, dtype=np.uint64), "uint64"
    try:
        return np.asarray(index, dtype=np.int64), "int64"
    except OverflowError:
        pass
    try:
        return np.asarray(index, dtype=np.uint64), "uint64"
    except OverflowError:
        return None, None


def _encode_ids(name, index, arrays, header):
    kind = pd.api.types.infer_dtype(index, skipna=False)
    values, dtype = _integer_array(index) if kind == "integer" else (None, None)
    if values is not None:
        arrays[name] = values
        header["ids"][name] = dtype
    elif kind == "floating":
        arrays[name] = np.asarray(index, dtype=np.float64)
        header["ids"][name] = "float64"
    elif kind == "string":
        encoded = [str(v).encode("utf-8") for v in index]
        arrays[name] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays[name + ".offsets"] = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)
        header["ids"][name] = "utf8"
    else:
        values = [v.item() if isinstance(v, np.generic) else v for v in index]
        if not all(isinstance(v, (int, float, str, bool)) for v in values):
            bad = next(v for v in values if not isinstance(v, (int, float, str, bool)))
            raise InvalidArgumentError(f"ids of type {type(bad).__name__} ({bad!r}) cannot be saved; "
                                       f"use numbers or strings as ids")
        header["ids"][name] = values


def _decode_ids(name, spec, arrays):
    """The pd.Index of one id table; any inconsistency raises ValueError (a damaged file)."""
    if spec in ("int64", "uint64", "float64"):
        values = arrays[name]
        if values.ndim != 1 or values.dtype != np.dtype(spec):
            raise ValueError(f"id table {name} is not a 1-d {spec} array")
        return pd.Index(values)
    if spec == "utf8":
        blob, offsets = arrays[name].tobytes(), arrays[name + ".offsets"]
        if (offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != len(blob)
                or (np.diff(offsets) < 0).any()):
            raise ValueError(f"id table {name} has inconsistent string offsets")
        return pd.Index([blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])])
    if not isinstance(spec, list) or not all(isinstance(v, (int, float, str, bool)) for v in spec):
        raise ValueError(f"id table {name} is neither an array nor a list of ids")
    return pd.Index(spec, dtype=object)


def encode_label(label):
    """A column label as JSON: strings as themselves, other labels tagged with their type, so
    that integer and tuple labels come back as they went in."""
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, str):
        return label
    if label is None or isinstance(label, bool):
        return {"literal": label}
    if isinstance(label, int):
        return {"int": label}
    if isinstance(label, float) and np.isfinite(label):
        return {"float": label}
    if isinstance(label, tuple):
        return {"tuple": [encode_label(v) for v in label]}
    raise InvalidArgumentError(f"the column label {label!r} (a {type(label).__name__}) cannot be saved; rename the "
                               f"column to a string, a number or a tuple of them before fit")


def decode_label(value):
    """The inverse of ``encode_label``; ValueError for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (kind, v), = value.items()
        if kind == "literal" and (v is None or isinstance(v, bool)):
            return v
        if kind == "int" and isinstance(v, int) and not isinstance(v, bool):
            return v
        if kind == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if kind == "tuple" and isinstance(v, list):
            return tuple(decode_label(x) for x in v)
    raise ValueError(f"column label {value!r} is not one embedrec writes")


def to_bytes(kind, params, columns, arrays, ids, history, extra=None):
    """Serialises a model's parts; ``ids`` maps a name to a pd.Index of raw ids; ``extra``
    holds further header entries (JSON values)."""
    header = {"class": kind, "params": params, "columns": [encode_label(c) for c in columns], "ids": {},
              "history": history, "arrays": []}
    header.update(extra or {})
    arrays = dict(arrays)
    for name, index in ids.items():
        _encode_ids(name, index, arrays, header)
    payload = io.BytesIO()
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        header["arrays"].append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                                 "offset": payload.tell(), "nbytes": array.nbytes})
        payload.write(array.tobytes())
        payload.write(b"\0" * (-payload.tell() % 8))
    header_bytes = json.dumps(header, allow_nan=False).encode("utf-8")
    header_bytes += b" " * (-(len(header_bytes) + _PREFIX.size) % 8)
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes + payload.getvalue()
    return body + hashlib.sha256(body).digest()


def from_bytes(data, source="the data"):
    """Checks and parses bytes written by :func:`to_bytes`; returns (header, arrays, ids)."""
    data = memoryview(data)
    if len(data) < _PREFIX.size + _DIGEST or bytes(data[:8]) != MAGIC:
        raise ModelFileError(f"{source} is not an embedrec model file (no EMBEDREC signature)")
    _, version, header_len = _PREFIX.unpack(data[:_PREFIX.size])
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{source} has model format {version}; this embedrec reads format {FORMAT_VERSION} "
                             f"and older. Upgrade embedrec to load it.")
    body = data[:-_DIGEST]
    if hashlib.sha256(body).digest() != bytes(data[-_DIGEST:]):
        raise ModelFileError(f"{source} is damaged: its checksum does not match (truncated or altered file)")
    start = _PREFIX.size + header_len
    if start > len(body):
        raise ModelFileError(f"{source} is damaged: its header runs past the end of the file")
    try:
        header = json.loads(bytes(data[_PREFIX.size:start]).decode("utf-8"))
        arrays = {}
        for spec in header["arrays"]:
            dtype = np.dtype(spec["dtype"])
            if dtype.kind not in "iuf" or dtype.itemsize > 8:
                raise ValueError(f"array {spec['name']} has dtype {spec['dtype']}, which embedrec never writes")
            shape = [int(n) for n in spec["shape"]]
            if any(n < 0 for n in shape) or int(np.prod(shape, dtype=object)) * dtype.itemsize != spec["nbytes"]:
                raise ValueError(f"array {spec['name']} has shape {spec['shape']} for {spec['nbytes']} bytes")
            lo = start + spec["offset"]
            hi = lo + spec["nbytes"]
            if spec["offset"] < 0 or hi > len(body):
                raise ValueError(f"array {spec['name']} lies outside the file")
            array = np.frombuffer(body[lo:hi], dtype=dtype).reshape(shape)
            arrays[spec["name"]] = array.copy()
        ids = {name: _decode_ids(name, spec, arrays) for name, spec in header["ids"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, OverflowError) as exc:
        raise ModelFileError(f"{source} is damaged: {exc}") from None
    return header, arrays, ids


class ModelFileNotFoundError(InvalidArgumentError, FileNotFoundError):
    """``load`` was given a path where there is no file (a ``FileNotFoundError``, and an
    ``InvalidArgumentError`` as it was before)."""


class ModelPathIsADirectoryError(InvalidArgumentError, IsADirectoryError):
    """``load`` or ``save`` was given a directory instead of a file."""


def _check_path(path, what):
    if isinstance(path, (str, bytes)) and not path or str(path).strip() == "":
        raise InvalidArgumentError(f"{what} needs a file name, got an empty path")
    try:
        return Path(path)
    except TypeError:
        raise InvalidArgumentError(f"{what} needs a file path (str or os.PathLike), got {type(path).__name__}") from None


def write_atomically(path, data):
    """Writes ``data`` to ``path`` through a temporary file in the same folder and a rename.
    Errors name ``path``, never the temporary file."""
    path = _check_path(path, "save")
    if path.is_dir():
        raise ModelPathIsADirectoryError(f"cannot save to {path}: it is a directory; name a file in it")
    folder = path.parent if str(path.parent) else Path(".")
    # Ctrl-C is held for the whole step and looked at between chunks: an interrupted save stops
    # there and removes its temporary file, and no interrupt can land between making that file
    # and removing or renaming it.
    with deferred_interrupts() as ctrl_c:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot save to {path}: {exc.strerror}", str(path)) from None
        try:
            with os.fdopen(fd, "wb") as f:
                view = memoryview(data)
                for start in range(0, len(view), _WRITE_CHUNK):
                    if ctrl_c.pending:
                        raise KeyboardInterrupt
                    f.write(view[start:start + _WRITE_CHUNK])
                f.flush()
                os.fsync(f.fileno())
            if ctrl_c.pending:
                raise KeyboardInterrupt
            os.replace(tmp, path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if isinstance(exc, OSError):
                raise type(exc)(exc.errno, f"cannot save to {path}: {exc.strerror}", str(path)) from None
            raise


def load(path):
    """Loads a model written by ``model.save(path)``. A missing file raises
    ``FileNotFoundError``, a directory ``IsADirectoryError`` (both also ``EmbedrecError``s); a
    file that is not an intact embedrec model raises :class:`ModelFileError`."""
    path = _check_path(path, "load")
    if path.is_dir():
        raise ModelPathIsADirectoryError(f"cannot load {path}: it is a directory, not a saved model")
    if not path.is_file():
        raise ModelFileNotFoundError(f"no such file: {path}")
    return load_bytes(path.read_bytes(), source=str(path))


def load_bytes(data, source="the data"):
    """Rebuilds a model from :func:`to_bytes` output (also what ``pickle`` uses). Whatever the
    bytes hold, the result is a model or a ModelFileError (or an EmbedrecMemoryError for a
    model too large for this machine), never another library's error."""
    from .errors import EmbedrecMemoryError

    header, arrays, ids = from_bytes(data, source)
    try:
        if not isinstance(header, dict) or not isinstance(header.get("class"), str):
            raise ValueError("the header names no model class")
        cls = _registry.model_class(header["class"])
        if cls is None:
            raise ModelFileError(f"{source} holds a {header['class']!r}, which this embedrec does not know")
        if not isinstance(header.get("params"), dict):
            raise ValueError("the header has no parameters")
        for name in ("users", "items"):
            if name not in ids or len(ids[name]) < 1:
                raise ValueError(f"the file has no {name[:-1]} ids")
            if ids[name].has_duplicates:
                raise ValueError(f"the {name[:-1]} ids repeat")
        return cls._from_saved(header, arrays, ids)
    except (ModelFileError, EmbedrecMemoryError):
        raise
    except Exception as exc:  # a file that passed its checksum but is not what embedrec writes
        raise ModelFileError(f"{source} is damaged: {exc}") from None
