"""The full-size check of track.winograd_tile='auto' (run.sh): each of our r50 paths against
the upstream tracker on the same regenerated weights (pysot for SiamRPN++, the official CLNet
tracker in float32 and float64, both label layouts), max abs box difference over the 20
Dudek frames (the files carry 4 decimals: 0 means below 5e-5 px). pysot has no float64
tracker here, so the SiamRPN++ paths and pysot itself are also compared with our float64
path, which equals the official CLNet tracker's float64 boxes at the files' resolution."""
import json
import sys

import numpy as np

UP = "/work/up"
load = lambda p: np.loadtxt(p, delimiter=",")
pairs = [(f"siam_{p}", "pysot") for p in ("tauto", "t2", "xla", "f64")]
pairs += [(f"siam_{p}", "ours/siam_f64") for p in ("tauto", "t2", "xla")] + [("../pysot", "ours/siam_f64")]
for lay in ("off", "fix"):
    pairs += [(f"{lay}_{p}", f"clnet_{lay}32") for p in ("tauto", "t2")]
    pairs += [(f"{lay}_{p}", f"clnet_{lay}64") for p in ("tauto", "t2", "f64")]
out = {}
for ours, up in pairs:
    d = np.abs(load(f"{UP}/ours/{ours}.txt") - load(f"{UP}/{up}.txt")).max(1)
    mine = ours.startswith(("siam", "off", "fix"))
    out[f"{ours.strip('./')}_vs_{up.replace('ours/', 'ours_')}"] = {
        "max_px": float(d.max()), "first_tracked_px": float(d[1]),
        "frames_over_1e-3_px": int((d > 1e-3).sum()),
        "fps": json.load(open(f"{UP}/ours/{ours}.json"))["fps"] if mine else None}
    print(f"{ours:<10} vs {up:<12} {d.max():.1e} px (first tracked {d[1]:.1e})")
json.dump(out, open(sys.argv[1], "w"), indent=1)
