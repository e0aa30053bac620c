"""Shared fixtures: the golden files in tests/golden (see its README), converted weights."""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile

# One persistent XLA compilation cache for the whole test run, in a fresh temporary
# folder (removed at exit), set before JAX compiles anything: tests build the same tiny
# trackers and training steps over and over (and the testbed's rows share their per-frame
# programs), so every program after the first is loaded instead of compiled. Processes the
# tests start (train.py in the multi-process tests) inherit it through the environment. A
# cache folder already set in the environment is used as it is; CLNET_TEST_XLA_CACHE=0
# compiles everything afresh.
if (os.environ.get("CLNET_TEST_XLA_CACHE", "1") != "0"
        and not os.environ.get("JAX_COMPILATION_CACHE_DIR")):
    _xla_cache = tempfile.mkdtemp(prefix="clnet_jax_test_xla_cache_")
    atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _xla_cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import cv2  # noqa: E402
import jax  # noqa: E402

if os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # in case a plugin imported JAX first
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 1)))

import numpy as np  # noqa: E402
import pytest

from clnet_jax import config as config_lib
from clnet_jax.model import weights
from clnet_jax.track import runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY = os.path.join(ROOT, "tests", "golden")
DUDEK = os.path.join(PARITY, "sequences", "Dudek")
REALDATA = os.path.join(PARITY, "realdata")  # real frames in their published layouts


def write_frames(d, numbers, pattern="{:04d}.jpg", size=(24, 32)) -> list[str]:
    """Small frames ``d/pattern.format(i)`` for each number (a layout fixture's images)."""
    os.makedirs(d, exist_ok=True)
    paths = []
    for i in numbers:
        p = os.path.join(str(d), pattern.format(i))
        cv2.imwrite(p, np.full((*size, 3), (7 * i) % 250, np.uint8))
        paths.append(p)
    return paths


def write_rows(path, rows, sep=",") -> None:
    """A ground-truth file, one row of values a line."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(sep.join(str(v) for v in r) + "\n" for r in rows)


@pytest.fixture(scope="session")
def golden():
    return {n: np.load(os.path.join(PARITY, f"{n}.npz"))
            for n in ("siamrpn_tiny", "siamrpn_tiny_train", "clnet_tiny", "clnet_tiny_fixed")}


def config(name: str, **overrides):
    """configs/<name>.py, or the test-only tests/configs/<name>.py."""
    path = os.path.join(ROOT, "configs", f"{name}.py")
    if not os.path.exists(path):
        path = os.path.join(ROOT, "tests", "configs", f"{name}.py")
    return config_lib.from_file(path, overrides)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    """Orbax weights converted from the .pth fixtures: {'siamrpn': dir, 'clnet': dir}."""
    out = {}
    for kind, src in (("siamrpn", "siamrpn_tiny.pth"), ("clnet", "clnet_tiny.pth")):
        d = str(tmp_path_factory.mktemp(kind) / "w")
        weights.convert_checkpoint(os.path.join(PARITY, src), d)
        out[kind] = d
    return out


@pytest.fixture(scope="session")
def tiny_params(weights_dir):
    return runner.load_params(config("siamrpn_tiny"), weights_dir["siamrpn"])


@pytest.fixture(scope="session")
def clnet_params(weights_dir):
    return runner.load_params(config("clnet_tiny"), weights_dir["clnet"])


@pytest.fixture(scope="session")
def synthetic_video():
    d = os.path.join(PARITY, "synthetic_video")
    frames = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(d, "img", "*.png")))]
    gt = np.loadtxt(os.path.join(d, "groundtruth_rect.txt"), delimiter=",")
    return frames, gt


@pytest.fixture(scope="session")
def dudek():
    frames = [cv2.imread(f) for f in sorted(glob.glob(os.path.join(DUDEK, "img", "*.jpg")))]
    gt = np.loadtxt(os.path.join(DUDEK, "groundtruth_rect.txt"), delimiter=",")
    return frames, gt


def nhwc(a):
    return np.transpose(np.asarray(a), (0, 2, 3, 1))


def nchw(a):
    return np.transpose(np.asarray(a), (0, 3, 1, 2))


def assert_close(ours, ref, name=""):
    """The parity tolerance: max abs error <= 1e-4 * max(1, max |ref|)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape} vs {ref.shape}"
    err = np.abs(ours - ref).max()
    tol = 1e-4 * max(1.0, np.abs(ref).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > {tol:.3g}"


def iou(a, b) -> np.ndarray:
    """IoU of (x, y, w, h) boxes (NumPy in, NumPy out; broadcasting)."""
    import jax.numpy as jnp

    from clnet_jax.model import anchors
    return np.asarray(anchors.xywh_iou(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))


def stage_losses(workdir, stage: str = "base") -> np.ndarray:
    """(step, loss) rows of a training stage's metrics.csv."""
    import csv
    with open(os.path.join(str(workdir), stage, "metrics.csv")) as f:
        return np.array([[int(r["step"]), float(r["loss"])] for r in csv.DictReader(f)])


def golden_hidden(net, params: dict, golden_file) -> dict:
    """The hidden maps of a golden file's first search crop (``x_init``) against its
    template (``z``): what the adaptation sees."""
    import jax.numpy as jnp
    kernels = net.apply(params["model"], jnp.asarray(nhwc(golden_file["z"])),
                        method=net.template_kernels)
    return net.apply(params["model"], kernels, jnp.asarray(nhwc(golden_file["x_init"])),
                     method=net.search_hidden)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A data directory with the tiny synthetic training store and evaluation splits, made
    once and shared by the training tests (and by every process of the multi-process ones)."""
    from clnet_jax.data import builders
    from clnet_jax.data import prepare as prep
    d = str(tmp_path_factory.mktemp("tfds"))
    prep.prepare("synthetic", d, builder_config="tiny")
    builders.prepare("synthetic", d, None, "tiny")
    return d


class ExportFolders(dict):
    """Export folders (``kind`` stablehlo or onnx) of the tiny SiamRPN++ and the tiny CLNet
    in both label layouts, for frames of ``size``: name -> (folder, config, params), each
    written on first use."""

    def __init__(self, tmp, size, tiny, clnet, kind: str):
        super().__init__()
        self.tmp, self.size, self.kind = tmp, size, kind
        self.spec = {"siamrpn": ("siamrpn_tiny", tiny, {}), "clnet": ("clnet_tiny", clnet, {}),
                     "clnet_official": ("clnet_tiny", clnet, {"clnet.label_layout": "official"})}

    def __missing__(self, name):
        from clnet_jax.deploy import export
        cfg_name, params, overrides = self.spec[name]
        cfg = config(cfg_name, **overrides)
        d = str(self.tmp.mktemp(f"{name}_{self.kind}"))
        export.write(d, cfg, params, [self.size], kind=self.kind)
        self[name] = (d, cfg, params)
        return self[name]
