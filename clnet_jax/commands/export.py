"""Exports a tracker as portable artifacts: StableHLO (``jax.export``) or ONNX (jax2onnx).

    clnet-export --config clnet_r50 --checkpoint weights/clnet_r50 --sizes 480x720[,...]
        --out exported/clnet_r50 [--format stablehlo|onnx] [--platforms cpu,cuda]

Writes, per frame size (height x width), ``init_HxW.<format>`` and ``step_HxW.<format>``
with the weights folded in, and ``export.json`` (format, tracking constants, input and
output names). StableHLO reloads with ``jax.export.deserialize`` without this package
(``clnet_jax.deploy.export.ExportedTracker`` tracks with it); ONNX runs with onnxruntime
alone (``clnet-track-onnx``, docs/deploy.md).
"""
import sys

from absl import flags, logging

from clnet_jax.commands import common
from clnet_jax.deploy import export
from clnet_jax.track import runner

_CONFIG = common.define_config(None)
flags.DEFINE_string("checkpoint", None, "weights directory (clnet-convert ...)")
flags.DEFINE_string("sizes", None, "frame sizes HEIGHTxWIDTH, comma-separated (e.g. 480x720)")
flags.DEFINE_string("out", None, "the export folder")
flags.DEFINE_enum("format", "stablehlo", ["stablehlo", "onnx"], "artifact format")
flags.DEFINE_string("platforms", "", "platforms to lower for, comma-separated (default: this "
                    "machine's backend), e.g. cpu,cuda")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    cfg = common.loaded(_CONFIG, required=False)
    if cfg is None or not FLAGS.checkpoint or not FLAGS.out or not FLAGS.sizes:
        sys.exit("error: --config, --checkpoint, --sizes and --out are needed")
    try:
        sizes = export.parse_sizes(FLAGS.sizes)
        params = runner.load_params(cfg, FLAGS.checkpoint)
        manifest = export.write(FLAGS.out, cfg, params, sizes,
                                [p for p in FLAGS.platforms.split(",") if p] or None,
                                FLAGS.format)
    except (export.ExportError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    for name, f in manifest["files"].items():
        print(f"{FLAGS.out}/{name}: {f['bytes'] / 2 ** 20:.1f} MiB")
    print(f"wrote {FLAGS.out}/{export.MANIFEST} ({cfg.name}, platforms "
          f"{', '.join(manifest['platforms'])})")


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
