"""The synthetic testbed's bases on real video: how much of what they learn transfers.

    python benchmarks/synthetic_on_real.py --data_dir /data/otb,/data/tlp,/data/vot \
        [--bases_dir runs/bases] [--real_bases_dir runs/bases_real] \
        [--out results/bench/synthetic_on_real.json]

Every seed whose base the synthetic testbed has built (``clnet-ablation --config ablation
--bases``, cached under ``--bases_dir``) is scored on the real testbed's test videos
(``ablation:real``'s ``split_videos``, read from the folders of ``--data_dir``), tracked
and scored exactly as ``ablation:real`` scores its own BT row (its tracking config and
batched evaluation; frames 2.. where the target is present). Where ``--real_bases_dir``
holds ``ablation:real``'s base of the same seed, that base is scored too, with the paired
difference synthetic − real over seeds × videos and its bootstrap CI. ``--compare DIR``
scores one more weights folder the same way (e.g. ``runs/real/base/weights`` of
``clnet-train --config real``) and pairs every synthetic seed with it per video. Bases that
are not built are reported missing, never trained here. Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from clnet_jax import config as config_lib  # noqa: E402
from clnet_jax.evaluate import scoring  # noqa: E402
from clnet_jax.experiments import ablation, cache  # noqa: E402
from clnet_jax.model import weights as weights_lib  # noqa: E402


def cached_base(cfg, seed: int) -> dict | None:
    """The seed's base weights if its testbed has built them, else None (never trains)."""
    if not os.path.isfile(cache.wall_path(cache.base_dir(cfg, seed))):
        return None
    return cache.build_base(cfg, seed)


def score(cfg_real, weights: dict, seqs: list) -> dict:
    """``ablation:real``'s BT evaluation of ``weights``: scoring.summary of its boxes."""
    out = ablation.evaluate(cfg_real, "BT", weights, seqs, cost=False)
    return scoring.summary({s.name: scoring.sequence_scores(s.gt, np.asarray(out["boxes"][s.name]))
                            for s in seqs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", required=True, help="the real folders, comma-separated")
    ap.add_argument("--bases_dir", default="runs/bases", help="the synthetic testbed's cache")
    ap.add_argument("--real_bases_dir", default="runs/bases_real",
                    help="ablation:real's cache (optional: its bases are compared where built)")
    ap.add_argument("--compare", default=None,
                    help="a weights folder of the same architecture, paired with every seed")
    ap.add_argument("--out", default="results/bench/synthetic_on_real.json")
    args = ap.parse_args()
    cfg_syn = config_lib.from_file("ablation", {"ablation.bases_dir": args.bases_dir})
    cfg_real = config_lib.from_file("ablation:real", {"data.dir": args.data_dir,
                                                      "ablation.bases_dir": args.real_bases_dir})
    seqs = ablation.split_sequences(cfg_real, ablation.real_videos(cfg_real), "test")
    rows, per_seed, missing = [], {}, []
    for seed in cfg_syn.ablation.seeds:
        syn = cached_base(cfg_syn, seed)
        if syn is None:
            missing.append(seed)
            continue
        per_seed[seed] = {"synthetic": score(cfg_real, syn, seqs)}
        real = cached_base(cfg_real, seed)
        if real is not None:
            per_seed[seed]["real"] = score(cfg_real, real, seqs)
        rows.append({"seed": seed, **{f"{k} AUC %": round(100 * v["success_auc"], 1)
                                      for k, v in per_seed[seed].items()}})
    if not per_seed:
        raise SystemExit(f"no synthetic base is built under {args.bases_dir} (seeds "
                         f"{list(cfg_syn.ablation.seeds)}): run clnet-ablation --config ablation --bases")
    print(common.table(rows, sorted({k for r in rows for k in r}, key=lambda k: k != "seed")))
    names = [s.name for s in seqs]
    result = {"seeds": list(per_seed), "missing_seeds": missing, "videos": names,
              "per_seed": per_seed,
              "synthetic_success_auc": float(np.mean([per_seed[s]["synthetic"]["per_sequence_auc"][n]
                                                      for s in per_seed for n in names]))}

    def paired(key: str, seeds: list, other) -> None:
        """synthetic − other over seeds × videos (``other(seed)``: its summary)."""
        diff = np.array([[per_seed[s]["synthetic"]["per_sequence_auc"][n]
                          - other(s)["per_sequence_auc"][n] for n in names] for s in seeds])
        mean, lo, hi = scoring.paired_bootstrap(diff)
        result[key] = {"seeds": seeds, "mean": mean, "ci95": [lo, hi],
                       "synthetic_wins": int((diff > 0).sum()), "pairs": int(diff.size),
                       "verdict": scoring.verdict((mean, lo, hi))}
        print(f"{key.replace('_', ' ')}, success AUC over {len(seeds)} seeds x {len(names)} "
              f"videos: {100 * mean:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]: "
              f"{scoring.verdict((mean, lo, hi))}")

    with_real = [s for s in per_seed if "real" in per_seed[s]]
    if with_real:
        paired("synthetic_minus_real", with_real, lambda s: per_seed[s]["real"])
    if args.compare:
        result["compare"] = {"weights": args.compare, **score(
            cfg_real, weights_lib.load(args.compare)[0], seqs)}
        print(f"{args.compare}: {100 * result['compare']['success_auc']:.1f} % success AUC")
        paired("synthetic_minus_compare", list(per_seed), lambda s: result["compare"])
    print(f"synthetic bases on the {len(names)} real test videos: "
          f"{100 * result['synthetic_success_auc']:.1f} % success AUC over seeds {list(per_seed)}"
          + (f" (not built: seeds {missing})" if missing else ""))
    common.write_json(args.out, result)


if __name__ == "__main__":
    main()
