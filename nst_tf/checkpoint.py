"""Checkpoints: everything needed to continue a run to the same result.

A checkpoint directory holds TensorFlow's files of the scale being optimised (its image,
optimizer state and steps taken) and a pointer, checkpoint.json: the format, the files'
prefix, the scale and the settings. The new files are written first and the pointer
replaced atomically after, so an interruption at any moment leaves a complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import NamedTuple

import tensorflow as tf

from nst_tf.config import Config, ConfigError

FILE = "checkpoint.json"
# The layout and meaning of the saved state; a change to it makes older checkpoints
# unusable, and `read` says so rather than resuming wrongly. 2: the L-BFGS history became a
# ring; 3: the losses became relative errors, so an older history's curvature pairs are in
# other units; 4: the scale became a field of the pointer; 5: L-BFGS gained a line search,
# whose state (the last accepted image's loss, the rejections, the per-image ring) is saved.
FORMAT = 5


class Pointer(NamedTuple):
    """Where a checkpoint's state is, and the scale (0: the coarsest) it was taken at."""

    prefix: str
    scale: int


def save(directory: str, state: tf.train.Checkpoint, config: Config, scale: int, step: int):
    """Write `state`, taken at `scale` after `step` steps there, with `config`'s settings."""
    os.makedirs(directory, exist_ok=True)
    prefix = f"ckpt-{scale}-{step}-{os.getpid()}"
    state.write(os.path.join(directory, prefix))
    old = _pointer(directory)
    tmp = os.path.join(directory, f".{FILE}.tmp")
    with open(tmp, "w") as f:
        json.dump(
            {"format": FORMAT, "prefix": prefix, "scale": scale, "config": _comparable(config)}, f
        )
    os.replace(tmp, os.path.join(directory, FILE))
    if old and old["prefix"] != prefix:
        for name in os.listdir(directory):
            if name.startswith(old["prefix"] + "."):
                os.unlink(os.path.join(directory, name))


def read(directory: str, config: Config, scales: int) -> Pointer:
    """The checkpoint in `directory`, checked against `config` and its number of scales."""
    pointer = _pointer(directory)
    if pointer is None:
        raise ConfigError(f"{directory}: no checkpoint to resume from")
    if pointer.get("format") != FORMAT:
        raise ConfigError(
            f"{directory}: the checkpoint was written by another version of nst_tf, "
            "whose saved state this one cannot read; start afresh"
        )
    ours = _comparable(config)
    if pointer["config"] != ours:
        changed = sorted(k for k in ours if pointer["config"].get(k) != ours[k])
        raise ConfigError(
            f"{directory}: the checkpoint was made with other settings ({', '.join(changed)})"
        )
    if not 0 <= pointer["scale"] < scales:
        raise ConfigError(f"{directory}: the checkpoint was made with other scales")
    return Pointer(pointer["prefix"], pointer["scale"])


def load(directory: str, pointer: Pointer, state: tf.train.Checkpoint) -> None:
    """Read the state `pointer` names into `state`, whose variables must all be in it."""
    state.read(os.path.join(directory, pointer.prefix)).assert_consumed()


def _pointer(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _comparable(config: Config) -> dict:
    """The settings a checkpoint must agree on: all but the number of steps."""
    fields = dataclasses.asdict(config)
    del fields["steps"]
    return json.loads(json.dumps(fields))  # tuples as lists, as they come back from JSON
