"""Reading PyTorch ``.pth`` files without PyTorch.

Two on-disk forms exist: the zip archive written by torch >= 1.6 and the older stream of
consecutive pickles that the published pysot / CLNet models use. Both pickle the object
graph and keep tensor bytes aside, referenced by "persistent ids". The unpickler below
resolves only the handful of globals that tensor storage needs; anything else (``os.system``,
``builtins.eval``, ...) is refused before it can run.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

__all__ = ["PthError", "load_pth", "flatten_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "BFloat16Storage": None,  # no numpy dtype: refused with a clear message below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class PthError(ValueError):
    """A file that is not a readable, safe PyTorch checkpoint."""


class _StorageType:
    def __init__(self, name: str):
        if _STORAGE_DTYPES.get(name) is None:
            raise PthError(f"unsupported tensor storage type torch.{name}")
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _LazyStorage:
    """Placeholder filled with bytes once the storage section is read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _LazyStorage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise PthError("tensor storage was never read (truncated file?)")
        item = flat.dtype.itemsize
        need = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride)) + 1
        if self.size and min(self.size) > 0 and need > flat.size:
            raise PthError("tensor extends past its storage (truncated file?)")
        out = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride])
        return np.array(out)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_unused):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict, legacy: bool):
        super().__init__(file)
        self._storages = storages
        self._legacy = legacy

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise PthError(
            f"refusing to load global '{module}.{name}': only tensor storage is allowed in a "
            "weights file (this file may contain code)")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise PthError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise PthError("persistent id without a storage type")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _LazyStorage(storage_type.dtype, int(numel))
        storage = self._storages[key]
        view = pid[5] if self._legacy and len(pid) > 5 else None
        if view is not None:  # legacy storage views: (view_key, offset, size)
            raise PthError("legacy storage views are not supported")
        return storage


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if not pkl:
            raise PthError(f"{path}: zip archive without data.pkl: not a PyTorch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict = {}
        obj = _SafeUnpickler(io.BytesIO(zf.read(pkl[0])), storages, legacy=False).load()
        if prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() != b"little":
            raise PthError(f"{path}: big-endian checkpoints are not supported")
        for key, st in storages.items():
            raw = zf.read(f"{prefix}data/{key}")
            if len(raw) < st.numel * st.dtype.itemsize:
                raise PthError(f"{path}: storage {key} is truncated")
            st.array = np.frombuffer(raw, dtype=st.dtype, count=st.numel)
    return obj


def _load_legacy(path: str, f) -> Any:
    magic = _SafeUnpickler(f, {}, legacy=True).load()  # never the plain unpickler
    if magic != _LEGACY_MAGIC:
        raise PthError(f"{path}: not a PyTorch checkpoint (bad magic number)")
    _SafeUnpickler(f, {}, legacy=True).load()  # protocol version
    _SafeUnpickler(f, {}, legacy=True).load()  # sys info (plain dict)
    storages: dict = {}
    obj = _SafeUnpickler(f, storages, legacy=True).load()
    keys = _SafeUnpickler(f, {}, legacy=True).load()
    for key in keys:
        st = storages[str(key)]
        header = f.read(8)
        if len(header) != 8:
            raise PthError(f"{path}: truncated before storage {key}")
        (numel,) = struct.unpack("<q", header)
        raw = f.read(numel * st.dtype.itemsize)
        if len(raw) != numel * st.dtype.itemsize:
            raise PthError(f"{path}: storage {key} is truncated")
        st.array = np.frombuffer(raw, dtype=st.dtype)
    return obj


def load_pth(path: str | os.PathLike) -> Any:
    """Loads a ``.pth`` file into nested dicts of NumPy arrays (half precision kept)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PthError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            obj = _load_zip(path)
        else:
            with open(path, "rb") as f:
                head = f.read(2)
                if head[:1] != b"\x80":
                    raise PthError(f"{path}: not a PyTorch checkpoint (no pickle header)")
                f.seek(0)
                obj = _load_legacy(path, f)
    except PthError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, KeyError, struct.error,
            ValueError, TypeError, AttributeError, IndexError) as e:
        raise PthError(f"{path}: unreadable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    return _materialise(obj)


def flatten_state_dict(obj: Any) -> dict[str, np.ndarray]:
    """Finds the state dict in a checkpoint, drops ``module.`` prefixes, casts floats to f32."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise PthError("checkpoint holds no state dict of tensors")
    out = {}
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k
        out[k] = v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v
    return out
