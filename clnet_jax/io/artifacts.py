"""Export folders (``clnet-export``): the manifest, file names and checks, without JAX.

Both the JAX side that writes and reloads StableHLO artifacts (``deploy/export.py``) and
the ONNX runtime that needs only onnxruntime, OpenCV and NumPy (``clnet_jax/runtime.py``)
read a folder through these functions, so they refuse the same things with the same words:
a folder that is not an export, a manifest of another format, an artifact of another kind
or missing, a file changed since export, a frame of a size that was not exported.

A folder holds, per frame size ``HxW``, ``init_HxW.<kind>`` and ``step_HxW.<kind>`` (kind
``stablehlo`` or ``onnx``) and one ``export.json``.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

FORMAT = "clnet-export/1"
MANIFEST = "export.json"
KINDS = ("stablehlo", "onnx")


class ExportError(ValueError):
    """An export folder that cannot be used as it is (missing file, other format, size)."""


def size_name(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"480x720,360x640"`` (height x width) -> [(480, 720), (360, 640)]."""
    out = []
    for part in (p for p in text.split(",") if p):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ExportError(f"frame size {part!r}: expected HEIGHTxWIDTH, e.g. 480x720") from None
        if h < 16 or w < 16:
            raise ExportError(f"frame size {part!r}: at least 16x16 pixels")
        out.append((h, w))
    if not out:
        raise ExportError("no frame size given (e.g. --sizes 480x720)")
    return out


def file_name(fn: str, size: Sequence[int], kind: str) -> str:
    return f"{fn}_{size_name(size)}.{kind}"


def write_file(folder: str, name: str, data: bytes) -> dict:
    """Writes atomically; returns the manifest's entry (size and sha256)."""
    path = os.path.join(folder, name)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(folder: str, manifest: dict) -> None:
    write_file(folder, MANIFEST, json.dumps(manifest, indent=1).encode())


def read_manifest(folder: str, kind: str | None = None) -> dict:
    """The folder's manifest; with ``kind``, refuses a folder of another artifact kind."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing (not a clnet-export folder)")
    with open(path) as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as e:
            raise ExportError(f"{path}: not JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ExportError(f"{path}: format {found!r}, this version reads {FORMAT!r}; export "
                          "again with this version")
    have = manifest.get("artifact", "stablehlo")
    if kind is not None and have != kind:
        raise ExportError(f"{path}: holds {have} artifacts, not {kind} (clnet-export "
                          f"--format {kind})")
    return manifest


def check_size(folder: str, manifest: dict, shape: Sequence[int]) -> tuple[int, int]:
    size = (int(shape[0]), int(shape[1]))
    if list(size) not in manifest["frame_sizes"]:
        raise ExportError(f"{folder}: frame size {size_name(size)} was not exported (exported: "
                          + ", ".join(size_name(s) for s in manifest["frame_sizes"]) + ")")
    return size


def read_artifact(folder: str, manifest: dict, fn: str, size: Sequence[int]) -> bytes:
    """The bytes of ``fn`` (init or step) for ``size``, checked against the manifest."""
    name = file_name(fn, size, manifest.get("artifact", "stablehlo"))
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing")
    with open(path, "rb") as f:
        data = f.read()
    want = manifest["files"].get(name, {}).get("sha256")
    if hashlib.sha256(data).hexdigest() != want:
        raise ExportError(f"{path}: does not match {MANIFEST} (another export?)")
    return data
