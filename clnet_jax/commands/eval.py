"""Evaluates a tracker on a benchmark, or compares result folders.

    clnet-eval --config configs/clnet_r50.py --checkpoint weights/clnet_r50
        --dataset otb100 --data_dir /data/OTB100 [--toolkit got10k|pysot] [--results_dir results]
        [--tracker_name X] [--batch 8] [--config.clnet.label_layout=official]
    clnet-eval --dataset folder --data_dir DIR --compare results/folder/A results/folder/B

Writes RESULTS/<dataset>/<tracker>/<sequence>.txt (pysot layout; reruns skip finished
sequences), then prints a summary table and writes summary.json beside the results. The score
follows the benchmark's experiment in the chosen toolkit (``--toolkit``; see
clnet_jax/evaluate/protocols.py), and both name it. ``--dataset auto`` detects the benchmark
from the folder's contents.

As N processes (``--coordinator_address --num_processes --process_id``, or a cluster's
environment) the sequences are split by process index; each process writes its own result
files and process 0 waits for all, then writes the summary.
"""
import json
import os
import sys

import jax
from absl import flags, logging

from clnet_jax import distributed
from clnet_jax.commands import common
from clnet_jax.data import benchmarks
from clnet_jax.evaluate import compare as compare_lib
from clnet_jax.evaluate import datasets as eval_data
from clnet_jax.evaluate import metrics, protocols
from clnet_jax.evaluate import runner as eval_runner
from clnet_jax.track import runner

_CONFIG = common.define_config(None)
flags.DEFINE_string("checkpoint", None, "weights directory (clnet-convert ...)")
flags.DEFINE_enum("dataset", "folder", eval_data.names(), "the benchmark (auto: detected "
                  "from the folder)")
flags.DEFINE_string("data_dir", None, "the dataset's root directory")
flags.DEFINE_string("results_dir", "results", "where RESULTS/<dataset>/<tracker>/ goes")
flags.DEFINE_string("tracker_name", None, "defaults to the config's name")
flags.DEFINE_integer("batch", 1, "sequences tracked at once (vmapped; frames of every size "
                     "on one canvas, one compilation)")
flags.DEFINE_enum("toolkit", "got10k", list(protocols.TOOLKITS),
                  "whose protocol scores the benchmark (absent targets differ)")
flags.DEFINE_multi_string("compare", None, "result folders to compare (no tracking)")
distributed.define_flags()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    distributed.initialize_from_flags()
    dataset = (benchmarks.detect(FLAGS.data_dir) if FLAGS.dataset == "auto" else FLAGS.dataset)
    seqs, problems = eval_data.load(dataset, FLAGS.data_dir)
    if FLAGS.dataset == "auto":
        print(f"{FLAGS.data_dir}: detected {dataset}")
    proto = protocols.protocol(dataset, FLAGS.toolkit)
    if FLAGS.compare:
        out = os.path.join(FLAGS.results_dir, dataset, "compare")
        scores = compare_lib.compare(FLAGS.compare, seqs, out, dataset, proto.rule)
        _table(scores, proto)
        print(f"plots: {out}/success_plot.png, {out}/precision_plot.png")
        attrs = sorted(next(iter(scores.values())).get("attributes", {})) if scores else []
        if attrs:
            print(f"per attribute ({', '.join(attrs)}): {out}/success_plot_<attr>.png, "
                  f"{out}/precision_plot_<attr>.png")
        return
    cfg = common.loaded(_CONFIG, required=False)
    if cfg is None or FLAGS.checkpoint is None:
        sys.exit("error: --config and --checkpoint are needed to track (or use --compare)")
    name = FLAGS.tracker_name or cfg.name
    params = runner.load_params(cfg, FLAGS.checkpoint)
    if proto.rule == "vot":
        return _vot(cfg, params, seqs, problems, name, dataset)
    folder = os.path.join(FLAGS.results_dir, dataset, name)
    mine = seqs[jax.process_index()::jax.process_count()]  # every process its share
    status = eval_runner.run_dataset(cfg, params, mine, FLAGS.results_dir, dataset,
                                     name, FLAGS.batch)
    status = _gather_status(status, folder)
    if not distributed.is_main():
        return
    missing = sorted(k for k, v in problems.items() if benchmarks.is_missing(v))
    status.update({k: f"failed: {v}" for k, v in problems.items() if k not in missing})
    got10k = proto.rule == "got10k"
    scored = compare_lib.read_results(folder, seqs, with_meta=got10k)
    summary = metrics.got10k_summary(scored) if got10k else metrics.summarize(scored, proto.rule)
    init_only = [s.name for s in seqs if s.init_only]
    if init_only:
        print(f"{len(init_only)} sequences have only an initial box: tracked, not scored")
    failed = {k: v for k, v in status.items() if v not in ("done",) and not v.startswith("skipped")}
    for k, v in sorted(failed.items()):
        print(f"FAILED {k}: {v}")
    if missing:
        print(f"{len(missing)} sequences that {dataset} lists are not in {FLAGS.data_dir} "
              "(named in summary.json); scored: the ones present")
    (_got10k_table if got10k else _table)({name: summary}, proto)
    report = {"tracker": name, "dataset": dataset, "protocol": proto._asdict(),
              "toolkit": proto.toolkit,
              "summary": {k: v for k, v in summary.items() if not k.endswith("curve")},
              "sequences": status, "not_scored": init_only, "missing": missing}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {folder}/summary.json")


def _gather_status(status: dict, folder: str) -> dict:
    """Every process's per-sequence status, merged on process 0 after all have finished."""
    if jax.process_count() == 1:
        return status
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f".status_p{jax.process_index()}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(status, f)
    os.replace(path + ".tmp", path)
    distributed.barrier("eval: every process has tracked its sequences")
    merged = {}
    for i in range(jax.process_count()):
        with open(os.path.join(folder, f".status_p{i}.json")) as f:
            merged.update(json.load(f))
    distributed.barrier("eval: statuses read")
    return merged


def _vot(cfg, params, seqs, problems, name, dataset):
    from clnet_jax.evaluate import vot
    status, runs = eval_runner.run_vot(cfg, params, seqs, FLAGS.results_dir, dataset, name)
    status.update({k: f"failed: {v}" for k, v in problems.items()})
    for k, v in sorted(status.items()):
        if v != "done" and not v.startswith("skipped"):
            print(f"FAILED {k}: {v}")
    summary = vot.summarize(runs, dataset) if runs else {}
    print(f"{'tracker':<28}{'accuracy':>10}{'robustness':>12}{'lost':>6}{'EAO':>8}")
    if summary:
        print(f"{name:<28}{summary['accuracy']:>10.3f}{summary['robustness']:>12.3f}"
              f"{summary['lost_number']:>6d}{summary['eao']:>8.3f}")
    folder = os.path.join(FLAGS.results_dir, dataset, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"tracker": name, "dataset": dataset,
                   "protocol": protocols.VOT_PROTOCOL._asdict(),
                   "summary": summary, "sequences": status}, f, indent=1)
    print(f"wrote {folder}/summary.json")


def _got10k_table(scores, proto):
    print(f"protocol: {proto.toolkit} {proto.experiment}: {proto.description}")
    print(f"{'tracker':<28}{'AO':>8}{'SR0.50':>8}{'SR0.75':>8}{'seqs':>6}")
    for n, s in sorted(scores.items(), key=lambda kv: -kv[1]["ao"]):
        print(f"{n:<28}{s['ao']:>8.3f}{s['sr50']:>8.3f}{s['sr75']:>8.3f}{s['sequences']:>6d}")


def _table(scores, proto):
    print(f"protocol: {proto.toolkit} {proto.experiment}: {proto.description}")
    print(f"{'tracker':<28}{'success AUC':>12}{'precision':>11}{'norm prec':>11}{'seqs':>6}")
    for n, s in sorted(scores.items(), key=lambda kv: -kv[1]["success_auc"]):
        print(f"{n:<28}{s['success_auc']:>12.3f}{s['precision']:>11.3f}"
              f"{s['norm_precision']:>11.3f}{s['sequences']:>6d}")


def run(argv: list[str] | None = None) -> None:
    flags.mark_flag_as_required("data_dir")
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
