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

from .errors import EmbedrecError, InvalidArgumentError

MAGIC = b"EMBEDREC"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32


class ModelFileError(EmbedrecError, ValueError):
    """A file is not an embedrec model, is of a newer format, or is damaged."""


def _encode_ids(name, index, arrays, header):
    kind = pd.api.types.infer_dtype(index, skipna=False)
    if kind == "integer":
        arrays[name] = np.asarray(index, dtype=np.int64)
        header["ids"][name] = "int64"
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
    if spec == "int64" or spec == "float64":
        return pd.Index(arrays[name])
    if spec == "utf8":
        blob, offsets = arrays[name].tobytes(), arrays[name + ".offsets"]
        return pd.Index([blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])])
    return pd.Index(spec, dtype=object)


def to_bytes(kind, params, columns, arrays, ids, history, extra=None):
    """Serialises a model's parts; ``ids`` maps a name to a pd.Index of raw ids; ``extra``
    holds further header entries (JSON values)."""
    header = {"class": kind, "params": params, "columns": [str(c) for c in columns], "ids": {},
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
            lo = start + spec["offset"]
            hi = lo + spec["nbytes"]
            if spec["offset"] < 0 or hi > len(body):
                raise ValueError(f"array {spec['name']} lies outside the file")
            array = np.frombuffer(body[lo:hi], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
            arrays[spec["name"]] = array.copy()
        ids = {name: _decode_ids(name, spec, arrays) for name, spec in header["ids"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{source} is damaged: {exc}") from None
    return header, arrays, ids


def write_atomically(path, data):
    """Writes ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load(path):
    """Loads a model written by ``model.save(path)``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"no such file: {path}")
    return load_bytes(path.read_bytes(), source=str(path))


def load_bytes(data, source="the data"):
    """Rebuilds a model from :func:`to_bytes` output (also what ``pickle`` uses)."""
    from . import models_by_name

    header, arrays, ids = from_bytes(data, source)
    cls = models_by_name().get(header["class"])
    if cls is None:
        raise ModelFileError(f"{source} holds a {header['class']!r}, which this embedrec does not know")
    return cls._from_saved(header, arrays, ids)
