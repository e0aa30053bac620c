"""A torch-free writer of PyTorch's zip ``.pth`` format, for test fixtures only.

It emits the pickle opcodes that ``torch.save`` writes for an ``OrderedDict`` of float32
tensors (``torch._utils._rebuild_tensor_v2`` over ``FloatStorage`` records), so tests can
make upstream-style files (e.g. a backbone-only ImageNet ResNet) without PyTorch.
"""
import struct
import zipfile

import numpy as np


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", int(i))


def _tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _ordered_dict() -> bytes:
    return _global("collections", "OrderedDict") + b")R"


def save_pth(path, state_dict: dict) -> None:
    body = [b"\x80\x02", _ordered_dict(), b"("]
    storages = {}
    for i, (name, value) in enumerate(state_dict.items()):
        v = np.ascontiguousarray(value, np.float32)
        key = str(i)
        storages[key] = v.tobytes()
        pid = _tuple([_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"),
                      _int(v.size)]) + b"Q"
        stride = [s // 4 for s in v.strides]
        args = _tuple([pid, _int(0), _tuple(map(_int, v.shape)), _tuple(map(_int, stride)),
                       b"\x89", _ordered_dict()])
        body += [_str(name), _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"]
    body.append(b"u.")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"".join(body))
        zf.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
