"""Prepares a frame-level training store (what ``clnet-train`` also does on first use):

    clnet-prepare --dataset got10k --manual_dir /data/GOT-10k [--data_dir data_cache]
    clnet-prepare --dataset auto --manual_dir /data/my_videos --name my_videos
"""
from __future__ import annotations

import os

from absl import flags

from clnet_jax.commands import common
from clnet_jax.data import frames
from clnet_jax.data import prepare as prep

flags.DEFINE_enum("dataset", None, list(prep.SOURCES), "synthetic, a training set, a "
                  "benchmark layout, or auto (detected from --manual_dir)")
flags.DEFINE_string("name", None, "the store's name (default: the dataset's)")
flags.DEFINE_string("manual_dir", None, "the dataset in its published layout")
flags.DEFINE_string("data_dir", "data_cache", "where stores are written")
flags.DEFINE_string("split", "train", "the dataset's split")
flags.DEFINE_enum("storage", None, list(frames.STORAGES), "crop511 (pysot's pre-crops) or full "
                  "frames (default: crop511 for real datasets, full for synthetic)")
flags.DEFINE_integer("workers", os.cpu_count(), "processes that prepare the store")
flags.DEFINE_string("builder_config", "default", "the synthetic builder's configuration")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    out = prep.prepare(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir, FLAGS.split,
                         FLAGS.storage, FLAGS.workers, FLAGS.builder_config, name=FLAGS.name)
    store = frames.FrameStore(out)
    print(f"{out}: {len(store)} records, {len(store.tracks)} tracks, "
          f"{len(store.skipped)} skipped inputs")


def run(argv: list[str] | None = None) -> None:
    flags.mark_flag_as_required("dataset")
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
