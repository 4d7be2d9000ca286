"""The devices a run spreads a large image's tiles over (--devices), with tf.distribute.

    auto    every GPU, else the CPU
    N       the first N GPUs
    cpu:N   the CPU split into N logical devices: the distributed path on any machine

Only tiled runs (an image above --tile_size) have work to spread: a MirroredStrategy over
the devices, each replica computing its share of the tiles' sums, added by an all-reduce
(nst_tf.tiles). One device means no strategy: the plain path. The tiled objective calls
`strategy.run` and `strategy.reduce` eagerly, from its Python loop over the tiles: a program
of its own may pass StyleTransfer a MultiWorkerMirroredStrategy, which runs that way on
each worker; TPUStrategy runs only compiled functions, so it is not supported.
"""

from __future__ import annotations

import re

import tensorflow as tf

from nst_tf.config import ConfigError

PATTERN = re.compile(r"auto|[1-9][0-9]*|cpu:[1-9][0-9]*")


def check(spec: str) -> str:
    """`spec` if it is a --devices value; else ConfigError."""
    if not PATTERN.fullmatch(spec):
        raise ConfigError(f"devices must be auto, a number of GPUs or cpu:N, got {spec!r}")
    return spec


def split_cpu(spec: str) -> None:
    """For cpu:N, split the CPU into N logical devices. TensorFlow allows this only before
    its runtime starts: the commands do it first thing (nst_tf.options.start_tensorflow)."""
    if not check(spec).startswith("cpu:"):
        return
    count = int(spec.split(":")[1])
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:  # already started: strategy() says whether enough are there
        pass


def strategy(spec: str) -> tf.distribute.Strategy | None:
    """A MirroredStrategy over the devices `spec` names, or None for a single device."""
    check(spec)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if spec.startswith("cpu:"):
        count = int(spec.split(":")[1])
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < count:
            raise ConfigError(
                f"devices={spec}: TensorFlow started with {len(devices)} CPU device(s); the CPU "
                "is split only before it starts (nst_tf.devices.split_cpu)"
            )
        devices = devices[:count]
    elif spec == "auto":
        devices = gpus or ["/cpu:0"]
    else:
        if len(gpus) < int(spec):
            raise ConfigError(f"devices={spec}: this machine has {len(gpus)} GPU(s)")
        devices = gpus[: int(spec)]
    return tf.distribute.MirroredStrategy(devices) if len(devices) > 1 else None
