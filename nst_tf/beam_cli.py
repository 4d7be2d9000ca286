"""nst-tf-beam: paint a collection of photos on Apache Beam, one painting each.

    nst-tf-beam --input='photos/*.jpg' --style=painting.jpg --output_dir=painted/
    nst-tf-beam --input='gs://bucket/photos/*.jpg' --style=gs://bucket/painting.jpg \\
        --output_dir=gs://bucket/painted/ --runner=DataflowRunner --project=... ...

Each photo matched by --input becomes OUTPUT_DIR/<its name>.<--format> (nst_tf.beam says
how). The flags of nst-tf set the painting; every other flag is a Beam pipeline option
(--runner, --direct_num_workers, Dataflow's, ...). Exit status 0 when the pipeline ran,
whatever failed photo by photo (OUTPUT_DIR/failures.jsonl lists those); 2 for a bad flag;
1 when the pipeline failed.
"""

from __future__ import annotations

import sys
import time

from nst_tf import options

options.start_tensorflow(sys.argv)  # before anything imports TensorFlow, to keep it quiet

from absl import flags, logging  # noqa: E402

PROG = "nst-tf-beam"

try:
    with options.quiet_python_logging():  # Beam's import warns of cloud clients it lacks
        import apache_beam as beam
except ImportError:
    options.fail(PROG, "Apache Beam is not installed: pip install 'nst_tf[beam]'", 1)
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from nst_tf.beam import FAILURES, Painting, exported_config, metrics, pipeline  # noqa: E402
from nst_tf.config import ConfigError  # noqa: E402
from nst_tf.images import ImageError  # noqa: E402

options.define(options.BEAM_FLAGS)
flags.mark_flags_as_required(["input", "style", "output_dir"])
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    try:
        painting = Painting(
            config=options.config_from_flags(),
            styles=tuple(FLAGS.style),
            output_dir=FLAGS.output_dir,
            extension="." + FLAGS.format,
            model_dir=FLAGS.model_dir,
            max_input_pixels=FLAGS.max_input_pixels,
        )
        if painting.model_dir:
            exported_config(painting.model_dir)  # refuses a directory that is not one
            if len(painting.styles) != 1:
                raise ConfigError("an exported model paints in one style: give one --style")
        for path in painting.styles:
            if not FileSystems.exists(path):
                raise ImageError(f"{path}: no such file")
    except (ConfigError, ImageError) as e:
        _fail(str(e), 2)
    start = time.perf_counter()
    try:
        with beam.Pipeline(options=PipelineOptions(argv[1:])) as root:
            pipeline(root, FLAGS.input, painting)
        result = root.result
    except (ConfigError, ImageError) as e:
        _fail(str(e), 1)
    done, failed, per_image = metrics(result)
    see = f" (see {FileSystems.join(FLAGS.output_dir, FAILURES)})" if failed else ""
    logging.info(
        "Painted %d photos into %s in %.0f s (%.1f s per photo); %d failed%s.",
        done, FLAGS.output_dir, time.perf_counter() - start, per_image, failed, see,
    )  # fmt: skip


def _fail(message: str, code: int):
    options.fail(PROG, message, code, options.BEAM_FLAGS)


def run() -> None:
    """Console-script entry point."""
    options.run(main, PROG, known_only=True, quiet_packages=("apache_beam",))


if __name__ == "__main__":
    run()
