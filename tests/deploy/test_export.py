"""clnet-export: StableHLO artifacts that track like the JAX tracker, reload without this
package, and refuse what they were not made for."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from clnet_jax.deploy import export
from clnet_jax.track import runner
from conftest import DUDEK, ROOT, ExportFolders, config


@pytest.fixture(scope="module")
def exported(tmp_path_factory, dudek, tiny_params, clnet_params):
    return ExportFolders(tmp_path_factory, dudek[0][0].shape[:2], tiny_params, clnet_params,
                         "stablehlo")


@pytest.mark.parametrize("name", ["siamrpn", "clnet",
                                  pytest.param("clnet_official", marks=pytest.mark.slow)])
def test_exported_boxes_equal_the_jax_tracker(exported, dudek, name):
    frames, gt = dudek
    d, cfg, params = exported[name]
    ours, scores = runner.SequenceTracker(cfg, params).track(frames, gt[0])
    boxes, ex_scores = export.ExportedTracker(d).track(frames, gt[0])
    # the weights are constants of the exported program and arguments of the jitted one, so
    # XLA may order the 1x1 convolutions' matrix products differently: float32 rounding
    # (1.4e-4 px seen by frame 20 at coordinates of ~300 px, a few ulps)
    assert np.abs(boxes - ours).max() <= 3e-4
    np.testing.assert_allclose(ex_scores[1:], scores[1:], atol=1e-5)


def test_manifest_names_inputs_outputs_and_constants(exported):
    d, cfg, _ = exported["clnet"]
    m = export.read_manifest(d)
    assert m["frame_sizes"] == [[480, 720]] and m["variant"] == "clnet"
    assert m["tracking"]["penalty_k"] == cfg.track.penalty_k
    step = m["signature"]["step"]
    names = [i["name"] for i in step["inputs"]]
    assert "frame" in names and "state['center']" in names and "state['heads']" in " ".join(names)
    assert [o["name"] for o in step["outputs"]][-2:] == ["box", "score"]
    assert {"name": "frame", "shape": [480, 720, 3], "dtype": "uint8"} in step["inputs"]
    for f, meta in m["files"].items():
        assert os.path.getsize(os.path.join(d, f)) == meta["bytes"]


def test_artifacts_reload_in_a_process_without_this_package(exported, dudek):
    d, _, _ = exported["siamrpn"]
    frames, gt = dudek
    expected, _ = export.ExportedTracker(d).track(frames[:5], gt[0])
    code = f"""
import sys
sys.modules['clnet_jax'] = None  # importing the package would fail here
import glob, cv2, jax, numpy as np
init = jax.export.deserialize(bytearray(open({d!r} + '/init_480x720.stablehlo', 'rb').read()))
step = jax.export.deserialize(bytearray(open({d!r} + '/step_480x720.stablehlo', 'rb').read()))
frames = [cv2.imread(f) for f in sorted(glob.glob({DUDEK!r} + '/img/*.jpg'))[:5]]
state = init.call(frames[0], np.array({list(gt[0])!r}, np.float32))
for f in frames[1:]:
    state, box, score = step.call(state, f)
print(','.join(str(float(v)) for v in box))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr[-2000:]
    box = np.array([float(v) for v in out.stdout.strip().split(",")])
    assert np.abs(box - expected[-1]).max() <= 1e-4


def test_bad_inputs_are_refused_by_name(exported, tmp_path, dudek, clnet_params):
    frames, gt = dudek
    d, _, _ = exported["siamrpn"]
    trk = export.ExportedTracker(d)
    with pytest.raises(export.ExportError,
                       match=r"frame size 240x360 was not exported \(exported: 480x720\)"):
        trk.track([frames[0][::2, ::2]], gt[0])
    with pytest.raises(export.ExportError, match="frame size changed"):
        trk.track([frames[0], frames[1][::2, ::2]], gt[0])
    other = tmp_path / "other"
    other.mkdir()
    m = json.load(open(os.path.join(d, export.MANIFEST)))
    (other / export.MANIFEST).write_text(json.dumps(dict(m, format="clnet-export/0")))
    with pytest.raises(export.ExportError, match="format 'clnet-export/0'"):
        export.ExportedTracker(str(other))
    (other / export.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(export.ExportError, match="init_480x720.stablehlo: missing"):
        export.ExportedTracker(str(other)).track(frames[:2], gt[0])
    (other / "init_480x720.stablehlo").write_bytes(b"x")
    (other / "step_480x720.stablehlo").write_bytes(b"x")
    with pytest.raises(export.ExportError, match="does not match export.json"):
        export.ExportedTracker(str(other)).track(frames[:2], gt[0])
    with pytest.raises(export.ExportError, match="missing \\(not a clnet-export folder\\)"):
        export.ExportedTracker(str(tmp_path))
    with pytest.raises(export.ExportError, match="label_sampler='official_numpy'"):
        export.export_tracker(config("clnet_tiny", **{"clnet.label_sampler": "official_numpy"}),
                              clnet_params, (480, 720))
    with pytest.raises(export.ExportError, match="expected HEIGHTxWIDTH"):
        export.parse_sizes("480,720")


def test_clnet_export_command(weights_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "clnet_jax.commands.export", "--config", "siamrpn_tiny",
         f"--checkpoint={weights_dir['siamrpn']}", "--sizes=64x80", f"--out={tmp_path}/e"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "step_64x80.stablehlo" in out.stdout and os.path.isfile(tmp_path / "e" / "export.json")
    bad = subprocess.run(
        [sys.executable, "-m", "clnet_jax.commands.export", "--config", "siamrpn_tiny",
         f"--checkpoint={weights_dir['siamrpn']}", "--sizes=8x8", f"--out={tmp_path}/f"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert bad.returncode != 0 and "at least 16x16" in bad.stderr and "Traceback" not in bad.stderr
