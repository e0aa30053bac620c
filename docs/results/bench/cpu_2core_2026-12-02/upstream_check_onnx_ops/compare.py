"""The full-size check after the ONNX-portable operations: our r50 boxes against the upstream
trackers', against our boxes of 2026-11-29 and against the run before the change (same seeded
weights), max abs difference over the 20 Dudek frames."""
import json
import sys

import numpy as np

OLD = "/work/main/docs/results/bench/cpu_2core_2026-11-29/upstream_check"
PREV = "/work/up/ours_2026-12-02a"
NEW = "/work/up/ours"
load = lambda p: np.loadtxt(p, delimiter=",")
out = {}
for ours, up in (("siam_wino", "pysot"), ("siam_xla", "pysot"), ("siam_f64", "pysot"),
                 ("off_wino", "clnet_off32"), ("off_xla", "clnet_off32"), ("off_f64", "clnet_off64"),
                 ("fix_wino", "clnet_fix32"), ("fix_xla", "clnet_fix32"), ("fix_f64", "clnet_fix64")):
    a, b, u = load(f"{NEW}/{ours}.txt"), load(f"{OLD}/ours_{ours}.txt"), load(f"{OLD}/{up}.txt")
    d = np.abs(a - u).max(1)
    out[ours] = {"vs_before_redesign_px": float(np.abs(a - b).max()),
                 "vs_before_onnx_ops_px": float(np.abs(a - load(f"{PREV}/{ours}.txt")).max()), "upstream": up,
                 "vs_upstream_px": float(d.max()), "frames_over_1e-3_px": int((d > 1e-3).sum()),
                 "fps": json.load(open(f"{NEW}/{ours}.json"))["fps"]}
    print(f"{ours:<10} vs before {out[ours]['vs_before_onnx_ops_px']:.4g} px   vs {up} "
          f"{out[ours]['vs_upstream_px']:.4g} px ({out[ours]['frames_over_1e-3_px']} frames over 1e-3)")
json.dump(out, open(sys.argv[1], "w"), indent=1)
