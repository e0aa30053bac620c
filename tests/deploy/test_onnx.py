"""clnet-export --format onnx and the JAX-free runtime: boxes equal to the JAX tracker, a
per-frame graph without runtime-kernel convolutions, no JAX on the runtime's path, and bad
inputs refused by name."""
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from clnet_jax import runtime
from clnet_jax.deploy import export
from clnet_jax.io import artifacts
from clnet_jax.track import runner
from conftest import DUDEK, ROOT, ExportFolders, config

ENV = dict(os.environ, PYTHONPATH=ROOT)


@pytest.fixture(scope="module")
def onnx_exports(tmp_path_factory, dudek, tiny_params, clnet_params):
    return ExportFolders(tmp_path_factory, dudek[0][0].shape[:2], tiny_params, clnet_params,
                         "onnx")


@pytest.mark.parametrize("name", ["siamrpn", "clnet",
                                  pytest.param("clnet_official", marks=pytest.mark.slow)])
def test_onnxruntime_boxes_equal_the_jax_tracker(onnx_exports, dudek, name):
    frames, gt = dudek
    d, cfg, params = onnx_exports[name]
    ours, scores = runner.SequenceTracker(cfg, params).track(frames, gt[0])
    boxes, ort_scores = runtime.OnnxTracker(d).track(frames, gt[0])
    assert np.abs(boxes - ours).max() <= 1e-3
    np.testing.assert_allclose(ort_scores[1:], scores[1:], atol=1e-4)
    assert np.abs(boxes[-1] - boxes[0]).max() > 1.0  # the target moved: the check has teeth


def test_per_frame_graph_has_no_runtime_kernel_convolution(onnx_exports):
    for name in ("siamrpn", "clnet"):
        d, _, _ = onnx_exports[name]
        step = onnx.load(os.path.join(d, "step_480x720.onnx"))
        assert export.runtime_kernel_convs(step.graph) == []
        # the backbone is there: 1x1 convolutions are matrix products (model/conv.py), the
        # 3x3 ones Winograd tile products, the rest Conv nodes with constant kernels
        ops = [n.op_type for n in step.graph.node]
        assert ops.count("Conv") >= 1 and ops.count("Einsum") + ops.count("MatMul") > 10
        assert not set(ops) & {"Loop", "Scan", "If", "RandomUniform", "RandomNormal"}, set(ops)
    init = onnx.load(os.path.join(onnx_exports["clnet"][0], "init_480x720.onnx"))
    assert not {n.op_type for n in init.graph.node} & {"Loop", "Scan", "RandomUniform"}


def test_the_graph_check_finds_runtime_kernels():
    """A convolution of a graph input, directly or through other nodes, is reported; one of
    an initializer is not."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 1, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], [0.0] * 9)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], name="fixed"),
         helper.make_node("Relu", ["k"], ["k2"]),
         helper.make_node("Conv", ["a", "k2"], ["b"], name="templated"),
         helper.make_node("Conv", ["b", "k"], ["y"], name="direct")],
        "g", [x, k], [y], [w])
    assert export.runtime_kernel_convs(graph) == ["templated", "direct"]


def test_manifest_and_flat_state_names(onnx_exports):
    d, cfg, _ = onnx_exports["clnet"]
    m = artifacts.read_manifest(d, "onnx")
    assert m["artifact"] == "onnx" and m["converter"].startswith("jax2onnx 0.12")
    step = m["signature"]["step"]
    state = [i["name"] for i in step["inputs"][:-1]]
    assert state == [i["name"] for i in m["signature"]["init"]["outputs"]]
    assert "state.center" in state and any(n.startswith("state.heads.") for n in state)
    assert [o["name"] for o in step["outputs"]][-2:] == ["box", "score"]
    sess = onnx.load(os.path.join(d, "step_480x720.onnx"), load_external_data=False)
    assert [i.name for i in sess.graph.input] == state + ["frame"]
    for f, meta in m["files"].items():
        assert os.path.getsize(os.path.join(d, f)) == meta["bytes"]


def test_runtime_imports_no_jax(onnx_exports, dudek):
    """The runtime's whole path, with JAX made unimportable."""
    d, _, _ = onnx_exports["siamrpn"]
    frames, gt = dudek
    expected, _ = runtime.OnnxTracker(d).track(frames[:4], gt[0])
    code = f"""
import sys
for m in ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'ml_collections', 'absl'):
    sys.modules[m] = None
import glob
from clnet_jax import runtime
from clnet_jax.track.inputs import read_frame
frames = [read_frame(f) for f in sorted(glob.glob({DUDEK!r} + '/img/*.jpg'))[:4]]
boxes, _ = runtime.OnnxTracker({d!r}).track(frames, {[float(v) for v in gt[0]]!r})
print(','.join(str(float(v)) for v in boxes[-1]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=ENV)
    assert out.returncode == 0, out.stderr[-2000:]
    box = np.array([float(v) for v in out.stdout.strip().split(",")])
    assert np.abs(box - expected[-1]).max() <= 1e-6


def test_runtime_refuses_bad_inputs_by_name(onnx_exports, tmp_path, dudek, tiny_params):
    frames, gt = dudek
    d, _, _ = onnx_exports["siamrpn"]
    trk = runtime.OnnxTracker(d)
    with pytest.raises(artifacts.ExportError,
                       match=r"frame size 240x360 was not exported \(exported: 480x720\)"):
        trk.init(frames[0][::2, ::2], gt[0])
    trk.init(frames[0], gt[0])
    with pytest.raises(artifacts.ExportError, match="frame size changed"):
        trk.update(frames[1][::2, ::2])
    with pytest.raises(ValueError, match="zero or negative size"):
        trk.init(frames[0], [10, 10, 0, 5])
    with pytest.raises(artifacts.ExportError, match="provider 'gpu'"):
        runtime.OnnxTracker(d, providers=["gpu"])
    stablehlo = str(tmp_path / "hlo")
    export.write(stablehlo, config("siamrpn_tiny"), tiny_params, [(64, 80)])
    with pytest.raises(artifacts.ExportError, match="holds stablehlo artifacts, not onnx"):
        runtime.OnnxTracker(stablehlo)
    with pytest.raises(artifacts.ExportError, match="holds onnx artifacts, not stablehlo"):
        export.ExportedTracker(d)
    other = tmp_path / "other"
    other.mkdir()
    (other / artifacts.MANIFEST).write_text(open(os.path.join(d, artifacts.MANIFEST)).read())
    with pytest.raises(artifacts.ExportError, match="init_480x720.onnx: missing"):
        runtime.OnnxTracker(str(other)).init(frames[0], gt[0])
    (other / "init_480x720.onnx").write_bytes(b"x")
    with pytest.raises(artifacts.ExportError, match="does not match export.json"):
        runtime.OnnxTracker(str(other)).init(frames[0], gt[0])
    (other / artifacts.MANIFEST).write_text("{")
    with pytest.raises(artifacts.ExportError, match="not JSON"):
        runtime.OnnxTracker(str(other))
    with pytest.raises(artifacts.ExportError, match="--platforms applies to stablehlo"):
        export.write(str(tmp_path / "p"), config("siamrpn_tiny"), tiny_params, [(64, 80)],
                     ["cpu"], kind="onnx")


def test_export_and_track_commands_write_the_same_files(weights_dir, tmp_path):
    """clnet-export --format onnx, then clnet-track-onnx and clnet-track on the same frames:
    box files of the same format and equal boxes; a bad command line fails in one line."""
    frames = os.path.join(DUDEK, "img")
    init = "%s" % open(os.path.join(DUDEK, "groundtruth_rect.txt")).readline().strip()
    e = subprocess.run(
        [sys.executable, "-m", "clnet_jax.commands.export", "--config", "siamrpn_tiny",
         f"--checkpoint={weights_dir['siamrpn']}", "--sizes=480x720", "--format=onnx",
         f"--out={tmp_path}/e"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)
    assert e.returncode == 0, e.stderr[-2000:]
    assert "step_480x720.onnx" in e.stdout
    o = subprocess.run(
        [sys.executable, "-m", "clnet_jax.runtime", f"--export={tmp_path}/e",
         f"--video={frames}", f"--init={init}", f"--out={tmp_path}/onnx.mp4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)
    assert o.returncode == 0, o.stderr[-2000:]
    j = subprocess.run(
        [sys.executable, "-m", "clnet_jax.commands.track", "--config", "siamrpn_tiny",
         f"--checkpoint={weights_dir['siamrpn']}", f"--video={frames}", f"--init={init}",
         f"--out={tmp_path}/jax.mp4"], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=ENV)
    assert j.returncode == 0, j.stderr[-2000:]
    a = np.loadtxt(tmp_path / "onnx.txt", delimiter=",")
    b = np.loadtxt(tmp_path / "jax.txt", delimiter=",")
    assert a.shape == b.shape == (20, 5) and np.isnan(a[0, 4]) and np.isnan(b[0, 4])
    assert np.abs(a[:, :4] - b[:, :4]).max() <= 1e-3
    assert os.path.getsize(tmp_path / "onnx.mp4") > 0 and os.path.getsize(tmp_path / "jax.mp4") > 0
    bad = subprocess.run(
        [sys.executable, "-m", "clnet_jax.runtime", f"--export={tmp_path}/e",
         f"--video={tmp_path}/none", "--init=1,2,3", f"--out={tmp_path}/x.mp4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert bad.returncode == 2 and "expected 4 numbers" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "clnet_jax.runtime", f"--export={tmp_path}/e",
         f"--video={tmp_path}/none", f"--init={init}", f"--out={tmp_path}/x.mp4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert bad.returncode == 2 and "no such video file or folder" in bad.stderr


@pytest.mark.slow
def test_runtime_in_a_virtualenv_without_jax(onnx_exports, tmp_path, dudek):
    """pip install --no-deps of this package beside onnxruntime, OpenCV and NumPy only (the
    pinned versions), then clnet-track-onnx over the fixture frames."""
    d, _, _ = onnx_exports["clnet"]
    frames, gt = dudek
    expected, _ = runtime.OnnxTracker(d).track(frames, gt[0])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    pins = {}
    for line in open(os.path.join(ROOT, "requirements-test.txt")).read().splitlines() + \
            open(os.path.join(ROOT, "requirements.txt")).read().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    src, wheels = tmp_path / "src", tmp_path / "wheels"  # built from a copy: no build/ here
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "clnet_jax"), src / "clnet_jax",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                          "--no-build-isolation", "-w", str(wheels), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    wanted = [f"{n}=={pins[n]}" for n in ("onnxruntime", "numpy", "opencv-python-headless")]
    for args in (wanted, ["--no-deps", *map(str, wheels.glob("*.whl"))]):
        out = subprocess.run(pip + args, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import jax"],
                           capture_output=True, text=True)
    assert check.returncode != 0  # no JAX in there
    init = ",".join(str(v) for v in gt[0])
    out = subprocess.run([str(venv / "bin" / "clnet-track-onnx"), f"--export={d}",
                          f"--video={DUDEK}/img", f"--init={init}", f"--out={tmp_path}/o.mp4"],
                         capture_output=True, text=True, timeout=600, cwd=str(tmp_path),
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr[-3000:]
    boxes = np.loadtxt(tmp_path / "o.txt", delimiter=",")[:, :4]
    assert np.abs(boxes - expected).max() <= 1e-3
