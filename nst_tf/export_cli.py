"""nst-tf-export: write a SavedModel that TensorFlow Serving can serve.

    nst-tf-export --export_dir=saved_models --name=nst_tf --version=1

Writes EXPORT_DIR/NAME/VERSION/ (saved_model.pb, variables/, assets.extra/). The loss
flags become the defaults of the signatures' optional inputs (--steps for num_steps,
--size for max_size). Exit status as for nst-tf: 2 for a bad flag or an existing version,
1 when the export fails.
"""

from __future__ import annotations

import sys

from nst_tf import options

options.start_tensorflow(sys.argv)  # before anything imports TensorFlow, to keep it quiet

from absl import flags, logging  # noqa: E402

from nst_tf.config import ConfigError  # noqa: E402

PROG = "nst-tf-export"

options.define(options.EXPORT_FLAGS)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
    from nst_tf.export import export_saved_model
    from nst_tf.features import WeightsError

    try:
        config = options.config_from_flags()
        limits = options.limits_from_flags()
        if FLAGS.version < 1:
            raise ConfigError(f"version must be a positive integer, got {FLAGS.version}")
        path = export_saved_model(config, FLAGS.export_dir, FLAGS.name, FLAGS.version, limits)
    except (ConfigError, FileExistsError) as e:
        _fail(str(e), 2)
    except (WeightsError, OSError) as e:
        _fail(str(e), 1)
    logging.info("Wrote %s.", path)


def _fail(message: str, code: int):
    options.fail(PROG, message, code, options.EXPORT_FLAGS)


def run() -> None:
    """Console-script entry point."""
    options.run(main, PROG)


if __name__ == "__main__":
    run()
