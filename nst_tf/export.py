"""SavedModel export: the style-transfer loop and its pieces as TensorFlow Serving signatures.

Signatures (names and dtypes are a public contract; docs/serving.md documents them):

    serving_default  content_bytes, style_bytes: string [] or [1], encoded JPEG/PNG/...;
                     optional num_steps, max_size (int32), content_weight, style_weight,
                     tv_weight (float32) -> stylized_bytes: string [1] (PNG), loss: float32 [1]
    stylize          content [1, H, W, 3], style [1, h, w, 3]: float32 in [0, 255]; optional
                     num_steps and weights -> image [1, H, W, 3], total, content, style, tv
    stylize_frame    a clip's next frame (nst_tf.clip): content, style, previous (the painted
                     frame before, warped onto this one) [1, H, W, 3], mask [1, H, W, 1];
                     optional num_steps (default FRAME_STEPS), weights and temporal_weight
                     -> image, total, content, style, tv, temporal
    stylize_fast     content [1, H, W, 3], style [1, h, w, 3]: float32 in [0, 255] -> image
                     [1, H, W, 3]: the feed-forward network's picture (nst_tf.fast, as
                     `nst-tf --fast`), one pass of a small network; only in exports made
                     with the fast extra installed
    loss             image, content, style (+ optional weights) -> total, content, style, tv
    targets          content, style -> content_<layer> features, style_<layer> Gram matrices,
                     content_tv (the content's roughness, the total variation's unit); with
                     style_loss gaussian_w2 also style_mean_<layer> and style_root_<layer>,
                     with sliced_w2 style_samples_<layer> and style_weights_<layer>
    init_state       image -> state_<field>: the optimizer's starting state
    step             image, state_<field>..., every output of targets (+ optional
                     weights) -> image (the next one to evaluate), result (what the steps
                     have made: for L-BFGS the last image its line search accepted),
                     state_<field>..., total, content, style, tv (at the image given)

serving_default and stylize give what the command gives for a content of that size with the
exported settings: coarse to fine (num_steps at the coarsest scale, as --steps), from the
exported init, with its preserve_colors; a step whose loss or gradient is not finite is not
taken (step returns its inputs unchanged). The export refuses the settings a request cannot
carry (see `served_config`), and assets.extra/nst_tf_config.json records what is served.
With tensorflow-serving-api installed, assets.extra/tf_serving_warmup_requests holds a
small request through stylize, stylize_frame, serving_default (one step at WARMUP_SIZE
px) and stylize_fast, which TF Serving runs when it loads the model, so the first client's
request does not pay for tracing and allocating the graph.

Every signature is a pure function: the image and optimizer state travel as tensors (in the
loop, as tf.while_loop variables), and no variable is written, so TF Serving can run
requests concurrently in one session. Optional inputs have their defaults (the exported
Config's) stored in the SignatureDef. Requests over the export's limits fail with
InvalidArgument naming the limit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nst_tf import fast, pyramid
from nst_tf.config import FAST_INIT, FRAME_STEPS, INIT_CHOICES, Config, ConfigError, Limits
from nst_tf.features import WeightsError, resolve_precision, weights_of
from nst_tf.images import MIN_SIDE, resize_longest, to_uint8
from nst_tf.objective import LossWeights, Objective, Targets
from nst_tf.optimize import finite, make_optimizer, minimize

IMAGE_SPEC = tf.TensorSpec([1, None, None, 3], tf.float32)
BYTES_SPEC = tf.TensorSpec(None, tf.string)  # [] or [1]
TERMS = ("total", "content", "style", "tv")
WEIGHT_NAMES = ("content_weight", "style_weight", "tv_weight")


def served_config(config: Config) -> Config:
    """The settings a SavedModel serves for `config`, as assets.extra records them.

    The same, except: never in tiles (tile_size 0: the served graph optimises the whole image,
    whose size Limits.max_pixels bounds, and tiles give the whole image's gradient anyway);
    no jit_compile in the graph (jit "off": XLA is the server's choice, see docs/serving.md); the
    precision resolved on the exporting machine (init "fast", the network's start, is
    computed in the graph). Settings that a request cannot carry are refused with
    ConfigError: an init image file, init "fast" without the fast extra, several styles (the
    signatures take one style image and no masks), and jit "on".
    """
    if config.init not in INIT_CHOICES:
        raise ConfigError(
            f"init={config.init} cannot be served: a served model starts from the content, "
            "the content recolored, noise, gray or the fast network's picture, not from a file"
        )
    if config.init == FAST_INIT and not fast.available():
        raise ConfigError(
            "init=fast cannot be served without the fast extra: pip install -e '.[fast]'"
        )
    if config.style_blend is not None and len(config.style_blend) > 1:
        raise ConfigError("style_blend cannot be served: a served model takes one style image")
    if config.jit == "on":
        raise ConfigError(
            "jit=on cannot be served: an exported graph leaves XLA to the server; use jit=auto"
        )
    return config.replace(
        tile_size=0, style_blend=None, jit="off", precision=resolve_precision(config.precision)
    )


class ServingModel:
    """The exported functions, built on the same Objective, optimizer and coarse-to-fine
    schedule (nst_tf.pyramid) as the command."""

    def __init__(self, config: Config, limits: Limits | None = None, extractor=None):
        served = served_config(config)
        self.limits = limits or Limits()
        self.objective = Objective(served, extractor)
        self.optimizer = make_optimizer(served)
        # What weights=auto became, and so which network: recorded as served.
        weights = weights_of(self.objective.extractor) or served.weights
        network = "vgg16" if weights == "hed" else served.network_name
        self.config = served.replace(weights=weights, network=network)
        self.fast = fast_network()

    # -- the computations, tensors in and out ------------------------------------------

    def targets(self, content: tf.Tensor, style: tf.Tensor) -> Targets:
        """Targets for content [1, H, W, 3] and the style [1, h, w, 3] resized as the
        command resizes it for a content of that size (config.style_scale)."""
        size = tf.reduce_max(tf.shape(content)[1:3])
        _, styles = pyramid.scale_inputs(self.config, content, [style[0]], size)
        return self.objective.targets(content, [s[None] for s in styles])

    def stylize(
        self, content: tf.Tensor, style: tf.Tensor, num_steps: tf.Tensor, weights: LossWeights
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The result for content [1, H, W, 3] and style [1, h, w, 3], and the loss terms of
        the image it was made from: what the command gives for a content of that size, coarse
        to fine with `num_steps` steps at the coarsest scale, from config.init, with
        config.preserve_colors. A step whose loss or gradient is not finite ends its scale."""
        c = self.config
        size = tf.reduce_max(tf.shape(content)[1:3])
        style = resize_longest(style[0], pyramid.style_size(c, size))
        sizes = pyramid.sizes(c, size)
        steps = pyramid.steps(c, tf.size(sizes), num_steps)

        def optimised(k: tf.Tensor, image: tf.Tensor) -> tuple[tf.Tensor, Targets]:
            """`image` upsampled to scale k and optimised there, and scale k's targets."""
            scaled = resize_longest(content, sizes[k])
            targets = self.targets(scaled, style[None])
            image = minimize(
                lambda x, i: self.objective.evaluate(x, targets, weights, i),
                self.optimizer,
                pyramid.upsample(image, scaled),
                steps[k],
                c.average,
            )
            return image, targets

        finest = tf.size(sizes) - 1
        coarsest = resize_longest(content, sizes[0])
        _, styles = pyramid.scale_inputs(c, coarsest, [style], sizes[0])
        start = pyramid.initial_image(c, coarsest, self.network_start(content, style), styles)
        _, image = tf.while_loop(
            lambda k, image: k < finest,
            lambda k, image: (k + 1, optimised(k, image)[0]),
            (tf.constant(0), start),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([1, None, None, 3])),
        )
        image, targets = optimised(finest, image)  # the finest scale keeps its targets
        terms = self.objective.terms(image, targets, weights)
        return pyramid.finish(c, image, content), terms

    def stylize_frame(
        self,
        content: tf.Tensor,
        style: tf.Tensor,
        previous: tf.Tensor,
        mask: tf.Tensor,
        num_steps: tf.Tensor,
        weights: LossWeights,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """A clip's next frame, as nst_tf.clip paints it: content [1, H, W, 3] optimised at
        its own size for `num_steps` steps from `previous` [1, H, W, 3] (the painted frame
        before, carried onto this one along the optical flow; with init "fast", from the
        network's start where `mask` is 0), with the temporal loss pulling it towards
        `previous` where `mask` [1, H, W, 1] is 1. The image and its
        loss terms."""
        checks = [
            tf.debugging.assert_equal(
                tf.shape(previous), tf.shape(content),
                message="previous must have the content's shape [1, H, W, 3]",
            ),
            tf.debugging.assert_equal(
                tf.shape(mask), tf.concat([tf.shape(content)[:3], [1]], axis=0),
                message="mask must be [1, H, W, 1], the content's height and width",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(checks):
            mask = tf.clip_by_value(mask, 0.0, 1.0)
        size = tf.reduce_max(tf.shape(content)[1:3])
        style = resize_longest(style[0], pyramid.style_size(self.config, size))
        targets = self.targets(content, style[None])._replace(temporal=previous, temporal_mask=mask)
        start = self.network_start(content, style)
        start = previous if start is None else fast.frame_start(previous, start, mask)
        image = minimize(
            lambda x, i: self.objective.evaluate(x, targets, weights, i),
            self.optimizer, start, num_steps, self.config.average,
        )  # fmt: skip
        terms = self.objective.terms(image, targets, weights)
        return pyramid.finish(self.config, image, content), terms

    def network_start(self, content: tf.Tensor, style: tf.Tensor) -> tf.Tensor | None:
        """With config.init "fast", the network's start (fast.start) for content [1, H, W, 3]
        in the style [h, w, 3], as resized for the content; else None."""
        if self.config.init != FAST_INIT:
            return None
        return fast.start(content, fast.style_code([style], [1.0]))

    def stylize_fast(self, content: tf.Tensor, style: tf.Tensor) -> tf.Tensor:
        """The feed-forward network's picture of content [1, H, W, 3] in the style [1, h, w,
        3], with config.preserve_colors "luminance" applied as `nst-tf --fast` does."""
        return fast.picture(self.config, content, fast.style_code([style[0]], [1.0]))

    # -- request checks -----------------------------------------------------------------

    def _check_steps(self, num_steps: tf.Tensor) -> tf.Tensor:
        limit = self.limits.max_steps
        checks = [
            tf.debugging.assert_non_negative(num_steps, message="num_steps must be >= 0"),
            tf.debugging.assert_less_equal(
                num_steps, limit, message=f"num_steps exceeds the limit max_steps={limit}"
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(num_steps)

    def _check_image(self, image: tf.Tensor, name: str, limit_name: str) -> tf.Tensor:
        return check_image(image, name, limit_name, getattr(self.limits, limit_name))

    def _decode(self, data: tf.Tensor, name: str) -> tf.Tensor:
        return decode_image(data, name, self.limits.max_input_pixels)

    # -- the signatures -----------------------------------------------------------------

    def signatures(self) -> dict[str, tuple[Callable, list]]:
        """{name: (function, input signature)}; optional inputs carry tensor defaults."""
        c = self.config
        steps = tf.constant(c.steps, tf.int32)
        size = tf.constant(c.size, tf.int32)
        cw, sw, tw = (
            tf.constant(w, tf.float32) for w in (c.content_weight, c.style_weight, c.tv_weight)
        )
        frame_steps = tf.constant(FRAME_STEPS, tf.int32)
        mw = tf.constant(c.temporal_weight, tf.float32)
        scalar = {n: tf.TensorSpec([], tf.float32, name=n) for n in WEIGHT_NAMES}
        weight_specs = [scalar[n] for n in WEIGHT_NAMES]
        steps_spec = tf.TensorSpec([], tf.int32, name="num_steps")
        # One traced coarse-to-fine optimisation, called by serving_default and stylize alike,
        # so an export traces and stores the loop once.
        traced_stylize = tf.function(self.stylize, autograph=False)

        def serving_default(
            content_bytes, style_bytes, num_steps=steps, max_size=size,
            content_weight=cw, style_weight=sw, tv_weight=tw,
        ):  # fmt: skip
            content = self._decode(content_bytes, "content")
            style = self._decode(style_bytes, "style")
            tf.debugging.assert_positive(max_size, message="max_size must be > 0")
            longest = tf.minimum(max_size, tf.reduce_max(tf.shape(content)[:2]))
            content = self._check_image(resize_longest(content, longest), "content", "max_pixels")
            weights = LossWeights(content_weight, style_weight, tv_weight)
            image, terms = traced_stylize(
                content[None], style[None], self._check_steps(num_steps), weights
            )
            return {
                "stylized_bytes": tf.reshape(tf.io.encode_png(to_uint8(image[0])), [1]),
                "loss": tf.reshape(terms["total"], [1]),
            }

        def stylize(
            content, style, num_steps=steps, content_weight=cw, style_weight=sw, tv_weight=tw
        ):
            content = self._check_image(content, "content", "max_pixels")
            style = self._check_image(style, "style", "max_input_pixels")
            weights = LossWeights(content_weight, style_weight, tv_weight)
            image, terms = traced_stylize(content, style, self._check_steps(num_steps), weights)
            return {"image": image, **terms}

        def stylize_frame(
            content, style, previous, mask, num_steps=frame_steps, content_weight=cw,
            style_weight=sw, tv_weight=tw, temporal_weight=mw,
        ):  # fmt: skip
            content = self._check_image(content, "content", "max_pixels")
            style = self._check_image(style, "style", "max_input_pixels")
            weights = LossWeights(content_weight, style_weight, tv_weight, temporal_weight)
            image, terms = self.stylize_frame(
                content, style, previous, mask, self._check_steps(num_steps), weights
            )
            return {"image": image, **terms}

        def stylize_fast(content, style):
            content = self._check_image(content, "content", "max_pixels")
            style = self._check_image(style, "style", "max_input_pixels")
            return {"image": self.stylize_fast(content, style)}

        def loss(image, content, style, content_weight=cw, style_weight=sw, tv_weight=tw):
            targets = self.targets(content, style)
            weights = LossWeights(content_weight, style_weight, tv_weight)
            return self.objective.terms(image, targets, weights)

        def targets(content, style):
            return self.targets_dict(self.targets(content, style))

        def init_state(image):
            return self.state_dict(self.optimizer.init(image))

        def step(inputs, content_weight=cw, style_weight=sw, tv_weight=tw):
            targets = self.targets_from_dict(inputs)
            state = self.state_from_dict(inputs)
            weights = LossWeights(content_weight, style_weight, tv_weight)
            image = inputs["image"]
            # The state's evaluation count numbers the step (it seeds sliced_w2's directions).
            terms, loss, grad = self.objective.evaluate(image, targets, weights, state.t)
            image, state = tf.cond(
                finite(terms, grad),
                lambda: self.optimizer.update(image, grad, loss, state),
                lambda: (image, state),
            )
            result = self.optimizer.result(image, state)
            return {"image": image, "result": result, **self.state_dict(state), **terms}

        named = lambda name: tf.TensorSpec(IMAGE_SPEC.shape, tf.float32, name=name)  # noqa: E731
        bytes_specs = [
            tf.TensorSpec(None, tf.string, name=n) for n in ("content_bytes", "style_bytes")
        ]
        fast_signature = {"stylize_fast": (stylize_fast, [named("content"), named("style")])}
        return {
            **(fast_signature if self.fast else {}),
            "serving_default": (
                serving_default,
                [
                    *bytes_specs,
                    steps_spec,
                    tf.TensorSpec([], tf.int32, name="max_size"),
                    *weight_specs,
                ],
            ),
            "stylize": (stylize, [named("content"), named("style"), steps_spec, *weight_specs]),
            "stylize_frame": (
                stylize_frame,
                [
                    named("content"),
                    named("style"),
                    named("previous"),
                    tf.TensorSpec([1, None, None, 1], tf.float32, name="mask"),
                    steps_spec,
                    *weight_specs,
                    tf.TensorSpec([], tf.float32, name="temporal_weight"),
                ],
            ),
            "loss": (loss, [named("image"), named("content"), named("style"), *weight_specs]),
            "targets": (targets, [named("content"), named("style")]),
            "init_state": (init_state, [named("image")]),
            "step": (step, [self._step_input_spec(), *weight_specs]),
        }

    # -- flat, named forms of Targets and optimizer state for the signatures -------------

    def targets_dict(self, targets: Targets) -> dict[str, tf.Tensor]:
        """content_<layer>, style_<layer> (Gram matrices), content_tv, and for gaussian_w2
        style_mean_<layer> and style_root_<layer>, for sliced_w2 style_samples_<layer> and
        style_weights_<layer>."""
        c = self.config
        return {
            **{f"content_{n}": t for n, t in zip(c.content_layers, targets.content)},
            **{f"style_{n}": t for n, t in zip(c.style_layers, targets.style)},
            **{f"style_mean_{n}": t for n, t in zip(c.style_layers, targets.style_mean)},
            **{f"style_root_{n}": t for n, t in zip(c.style_layers, targets.style_root)},
            **{f"style_samples_{n}": t for n, t in zip(c.style_layers, targets.style_samples)},
            **{f"style_weights_{n}": t for n, t in zip(c.style_layers, targets.style_weights)},
            "content_tv": targets.content_tv,
        }

    def targets_from_dict(self, d: dict[str, tf.Tensor]) -> Targets:
        c = self.config

        def per_layer(name):  # the optional fields, present for their style loss only
            return tuple(d[f"{name}_{n}"] for n in c.style_layers if f"{name}_{n}" in d)

        return Targets(
            content=tuple(d[f"content_{n}"] for n in c.content_layers),
            style=tuple(d[f"style_{n}"] for n in c.style_layers),
            content_tv=d["content_tv"],
            style_mean=per_layer("style_mean"),
            style_root=per_layer("style_root"),
            style_samples=per_layer("style_samples"),
            style_weights=per_layer("style_weights"),
        )

    def state_dict(self, state) -> dict[str, tf.Tensor]:
        return {f"state_{k}": v for k, v in state._asdict().items()}

    def state_from_dict(self, d: dict[str, tf.Tensor]):
        template = type(self.optimizer.init(tf.zeros([1, 1, 1, 3])))
        return template(**{k: d[f"state_{k}"] for k in template._fields})

    def _step_input_spec(self) -> dict[str, tf.TensorSpec]:
        """Named specs of the step's inputs, shapes from tracing init_state and targets."""
        state = tf.function(self.optimizer.init, autograph=False).get_concrete_function(IMAGE_SPEC)
        targets = tf.function(self.targets, autograph=False).get_concrete_function(
            IMAGE_SPEC, IMAGE_SPEC
        )
        tensors = {
            "image": IMAGE_SPEC,
            **self.state_dict(state.structured_outputs),
            **self.targets_dict(targets.structured_outputs),
        }
        return {k: tf.TensorSpec(t.shape, t.dtype, name=k) for k, t in tensors.items()}


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def size_checks(height, width, name: str, limit_name: str, limit: int) -> list[tf.Operation]:
    """Assertions that each side is >= MIN_SIDE and height * width <= limit."""
    pixels = tf.cast(height, tf.int64) * tf.cast(width, tf.int64)
    return [
        tf.debugging.assert_greater_equal(
            tf.cast(tf.minimum(height, width), tf.int64),
            tf.constant(MIN_SIDE, tf.int64),
            message=f"{name} image: each side must be at least {MIN_SIDE} pixels",
        ),
        tf.debugging.assert_less_equal(
            pixels,
            tf.constant(limit, tf.int64),
            message=f"{name} image exceeds the limit {limit_name}={limit} (height * width)",
        ),
    ]


def check_image(image: tf.Tensor, name: str, limit_name: str, limit: int) -> tf.Tensor:
    """`image` [..., H, W, 3] once checked; a failed check raises InvalidArgument."""
    shape = tf.shape(image)
    with tf.control_dependencies(size_checks(shape[-3], shape[-2], name, limit_name, limit)):
        return tf.identity(image)


def decode_image(data: tf.Tensor, name: str, max_input_pixels: int) -> tf.Tensor:
    """Encoded JPEG or PNG bytes ([] or [1]) -> float32 [H, W, 3] in [0, 255].

    The size is read from the header and checked before decoding, so a small file that
    claims a huge image (a decompression bomb) is refused without allocating it. Anything
    but exactly one JPEG or PNG within the limits raises InvalidArgument.
    """
    one = tf.debugging.assert_equal(
        tf.size(data), 1, message=f"{name}_bytes must hold exactly one encoded image"
    )
    with tf.control_dependencies([one]):
        data = tf.reshape(data, [])
    is_png = tf.equal(tf.strings.substr(data, 0, len(PNG_MAGIC)), PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, len(JPEG_MAGIC)), JPEG_MAGIC)
    kind = tf.debugging.Assert(
        tf.logical_or(is_png, is_jpeg), [f"{name}_bytes must be a JPEG or PNG image"]
    )
    with tf.control_dependencies([kind]):
        height_width = tf.cond(
            is_png,
            lambda: _png_height_width(data),
            lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64),
        )
    checks = size_checks(
        height_width[0], height_width[1], name, "max_input_pixels", max_input_pixels
    )
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return check_image(tf.cast(image, tf.float32), name, "max_input_pixels", max_input_pixels)


def _png_height_width(data: tf.Tensor) -> tf.Tensor:
    """Height and width from a PNG's IHDR chunk (big-endian uint32s at bytes 16 and 20)."""
    header = tf.strings.substr(tf.strings.join([data, b"\0" * 24]), 16, 8)  # short: zeros
    raw = tf.cast(tf.io.decode_raw(header, tf.uint8), tf.int64)
    width = raw[0] * 2**24 + raw[1] * 2**16 + raw[2] * 2**8 + raw[3]
    height = raw[4] * 2**24 + raw[5] * 2**16 + raw[6] * 2**8 + raw[7]
    return tf.stack([height, width])


WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_SIZE = 32  # px, the warmup requests' images: small, and above MIN_SIDE


def warmup_requests(signatures=()) -> list[tuple[str, dict[str, object]]]:
    """(signature, inputs) of the warmup requests: one step of stylize, stylize_frame and
    serving_default on small flat images, and stylize_fast where `signatures` has it."""
    grey = np.full([1, WARMUP_SIZE, WARMUP_SIZE, 3], 128.0, np.float32)
    png = tf.io.encode_png(grey[0].astype(np.uint8)).numpy()
    steps = np.int32(1)
    trusted = np.ones([1, WARMUP_SIZE, WARMUP_SIZE, 1], np.float32)
    return [
        ("stylize", {"content": grey, "style": grey, "num_steps": steps}),
        ("stylize_frame", {"content": grey, "style": grey, "previous": grey, "mask": trusted,
                           "num_steps": steps}),
        (
            "serving_default",
            {"content_bytes": np.array([png]), "style_bytes": np.array([png]),
             "num_steps": steps, "max_size": np.int32(WARMUP_SIZE)},
        ),
        *([("stylize_fast", {"content": grey, "style": grey})]
          if "stylize_fast" in signatures else []),
    ]  # fmt: skip


def write_warmup_requests(path: str, signatures=()) -> bool:
    """Write the warmup requests (`warmup_requests(signatures)`) as TF Serving reads them: a
    TFRecord file of PredictionLog protos. Needs tensorflow-serving-api (the serving extra);
    without it, writes nothing and returns False."""
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError:
        logging.warning(
            "No TF Serving warmup requests in the export: tensorflow-serving-api is not "
            "installed (pip install 'nst_tf[serving]')."
        )
        return False
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in warmup_requests(signatures):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return True


def export_saved_model(
    config: Config,
    export_dir: str,
    name: str = "nst_tf",
    version: int = 1,
    limits: Limits | None = None,
) -> str:
    """Write `export_dir/name/version/` in the layout TF Serving watches; returns its path.

    Written to a temporary directory and renamed, so a failed export leaves nothing behind;
    an existing version is never overwritten (a server may be serving it).
    """
    path = os.path.join(export_dir, name, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; choose another version")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model = ServingModel(config, limits)
    signatures = model.signatures()
    # The networks' variables (each a tf.Variable under TensorFlow's Keras), and every
    # signature traced once, as it is saved: Keras's ExportArchive traced each one again
    # beforehand to find the variables, a third of an export's time.
    networks = (model.objective.extractor, *(model.fast or ()))
    saved = tf.Module()
    saved.network_variables = [w.value for network in networks for w in network.weights]
    functions = {
        name: tf.function(fn, input_signature=spec, autograph=False)
        for name, (fn, spec) in signatures.items()
    }
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=f".{version}-")
    try:
        # The signatures differentiate inside their own graphs and nothing differentiates
        # through a loaded one, so the custom gradients' functions are not traced and saved.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        tf.saved_model.save(saved, tmp, signatures=functions, options=options)
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "nst_tf_config.json"), "w") as f:
            json.dump(
                {
                    "config": dataclasses.asdict(model.config),
                    "limits": dataclasses.asdict(model.limits),
                },
                f,
                indent=2,
            )
        write_warmup_requests(os.path.join(extra, WARMUP_FILE), signatures)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def fast_network() -> tuple[keras.Model, keras.Model] | None:
    """The feed-forward network's two models, or None (with a warning) where the fast extra
    is not installed: the export then has no stylize_fast signature."""
    try:
        return fast.network()
    except WeightsError as e:
        logging.warning("No stylize_fast signature in the export: %s", e)
        return None


class SessionModel:
    """A SavedModel loaded the way TF Serving loads it: the TF1 session loader, sess.run."""

    def __init__(self, path: str, tags: tuple[str, ...] = ("serve",)):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self.session, list(tags), path)
        self.signatures = dict(meta.signature_def)

    def run(self, signature: str = "serving_default", **inputs) -> dict:
        """Feed the named inputs (others take their defaults); returns every output."""
        sig = self.signatures[signature]
        feed = {sig.inputs[k].name: v for k, v in inputs.items()}
        fetch = {k: v.name for k, v in sig.outputs.items()}
        return self.session.run(fetch, feed)

    def close(self) -> None:
        self.session.close()
