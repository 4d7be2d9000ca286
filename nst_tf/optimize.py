"""Adam and L-BFGS as functions (image, gradient, state) -> (new image, new state).

The same math serves the interactive loop, which keeps the state in tf.Variables, and the
exported serving loop, which carries it as tf.while_loop variables so concurrent requests
never share state. Given tensors, an update is pure; given variables, L-BFGS writes its
history into them in place and returns them in the new state (see LBFGS). Every update
projects the image back to [0, 255]. Nothing here is data-dependent Python control flow, so
both compile under XLA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import tensorflow as tf

from nst_tf.config import Config
from nst_tf.features import computes_in_bfloat16

PIXEL_MAX = 255.0
EPSILON_PIXELS = 512 * 512  # the image size Adam's epsilon is given for (see Adam)


def project(image: tf.Tensor) -> tf.Tensor:
    """Clip pixel values into the valid range [0, 255]."""
    return tf.clip_by_value(image, 0.0, PIXEL_MAX)


def _dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Dot product per image of a batch [B, H, W, C]: [B, 1, 1, 1], ready to broadcast."""
    return tf.reduce_sum(a * b, axis=[1, 2, 3], keepdims=True)


class Optimizer(Protocol):
    def init(self, image: tf.Tensor) -> NamedTuple: ...

    def update(
        self, image: tf.Tensor, grad: tf.Tensor, state: NamedTuple
    ) -> tuple[tf.Tensor, NamedTuple]: ...


class AdamState(NamedTuple):
    m: tf.Tensor  # first moment, image-shaped
    v: tf.Tensor  # second moment, image-shaped
    t: tf.Tensor  # number of updates so far, float32 scalar


class Adam:
    """Adam (Kingma & Ba) with bias correction.

    beta_1=0.99 is the TensorFlow style-transfer tutorial's. Its epsilon (0.1 on [0, 1]
    pixels) is not: our losses are relative errors whose gradients are about 1e-6 per pixel
    at 512 x 512 (the gradient of a mean over pixels shrinks as 1 / (H * W)), which that
    epsilon would dwarf, freezing the step. Here `epsilon` is given for 512 x 512 pixels and
    scaled with the gradient to the image's size, so it stays a hundredth or so of a typical
    gradient at any size: a step moves a pixel by about `learning_rate` grey levels, and a
    pixel whose gradient is only rounding noise hardly moves.
    """

    def __init__(
        self,
        learning_rate: float,
        beta_1: float = 0.99,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ):
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def init(self, image: tf.Tensor) -> AdamState:
        zeros = tf.zeros_like(image)
        return AdamState(m=zeros, v=zeros, t=tf.constant(0.0))

    def update(
        self, image: tf.Tensor, grad: tf.Tensor, state: AdamState
    ) -> tuple[tf.Tensor, AdamState]:
        t = state.t + 1.0
        m = self.beta_1 * state.m + (1.0 - self.beta_1) * grad
        v = self.beta_2 * state.v + (1.0 - self.beta_2) * tf.square(grad)
        m_hat = m / (1.0 - tf.pow(self.beta_1, t))
        v_hat = v / (1.0 - tf.pow(self.beta_2, t))
        pixels = tf.cast(tf.shape(image)[1] * tf.shape(image)[2], grad.dtype)
        epsilon = self.epsilon * EPSILON_PIXELS / pixels
        step = self.learning_rate * m_hat / (tf.sqrt(v_hat) + epsilon)
        return project(image - step), AdamState(m=m, v=v, t=t)


class LBFGSState(NamedTuple):
    s: tf.Tensor  # [history, *image.shape] position differences, a ring (see LBFGS)
    y: tf.Tensor  # [history, *image.shape] gradient differences, a ring
    rho: tf.Tensor  # [history, B, 1, 1, 1] 1 / (s . y) per image; 0 marks an empty slot
    gamma: tf.Tensor  # [B, 1, 1, 1] (s . y) / (y . y) of the newest pair kept; 0 before one
    prev_image: tf.Tensor
    prev_grad: tf.Tensor
    t: tf.Tensor  # number of updates so far, float32 scalar


class LBFGS:
    """Limited-memory BFGS, the optimizer Gatys et al. used, one gradient evaluation per step.

    The inverse Hessian comes from the two-loop recursion (Nocedal & Wright, Alg. 7.4) over a
    fixed-size history, so the graph has static shapes and no data-dependent loops. The
    history is a ring: update t writes its curvature pair into slot t % history and nothing
    else moves. Given tf.Variables as state (the interactive loop) the slot is written in
    place, so a step writes one image-sized pair rather than copying the whole history.
    Like torch.optim.LBFGS without line search (the setting jcjohnson/neural-style uses),
    the step is `learning_rate` times the quasi-Newton direction. With no curvature known
    yet, the direction is the gradient scaled by 1/max|g|, so the first step moves the most
    sensitive pixel by one grey level. (torch's 1/|g|_1 moves a 512x512 image by ~1e-6
    levels: float32 rounding then swamps the first curvature pair, and the run depends on
    the last bit of every sum.) A curvature pair with s . y <= 0 is not used, which keeps
    the direction a descent one: its slot is left empty, so the oldest pair still goes.
    Each image of a batch [B, H, W, C] has its own history and dot products, so a batch
    takes exactly the steps its images would take one at a time.
    """

    def __init__(
        self, learning_rate: float = 1.0, history: int = 10, history_dtype: str = "float32"
    ):
        self.learning_rate = learning_rate
        self.history = history
        self.history_dtype = tf.as_dtype(history_dtype)

    def init(self, image: tf.Tensor) -> LBFGSState:
        zeros = tf.zeros_like(image)
        per_image = tf.zeros_like(image[:, :1, :1, :1])
        # A new buffer for each: variables made from them are then written in place from
        # the first step on, where a buffer they shared would be copied on first write.
        ring = lambda like: tf.tile(like[None], [self.history, 1, 1, 1, 1])  # noqa: E731
        pairs = tf.zeros_like(image, self.history_dtype)
        return LBFGSState(
            s=ring(pairs),
            y=ring(pairs),
            rho=ring(per_image),
            gamma=per_image,
            prev_image=zeros,
            prev_grad=zeros,
            t=tf.constant(0.0),
        )

    def update(
        self, image: tf.Tensor, grad: tf.Tensor, state: LBFGSState
    ) -> tuple[tf.Tensor, LBFGSState]:
        newest = tf.cast(state.t, tf.int32) % self.history
        # The pair as the history holds it, so rho and gamma agree with what is read back.
        s_new = self._as_kept(image - state.prev_image)
        y_new = self._as_kept(grad - state.prev_grad)
        sy = _dot(s_new, y_new)
        accept = tf.logical_and(state.t > 0.0, sy > 1e-10)  # [B, 1, 1, 1]
        safe = lambda x: tf.where(accept, x, 1.0)  # noqa: E731
        state = state._replace(
            s=_write(state.s, newest, s_new),
            y=_write(state.y, newest, y_new),
            rho=_write(state.rho, newest, tf.where(accept, 1.0 / safe(sy), 0.0)),
            gamma=tf.where(accept, sy / safe(_dot(y_new, y_new)), state.gamma),
        )
        direction = self.two_loop(grad, state, newest)
        new_image = project(image - self.learning_rate * direction)
        return new_image, state._replace(prev_image=image, prev_grad=grad, t=state.t + 1.0)

    def _as_kept(self, pair: tf.Tensor) -> tf.Tensor:
        """`pair` rounded to the history's dtype (float32 again, for the arithmetic)."""
        return tf.cast(tf.cast(pair, self.history_dtype), pair.dtype)

    def two_loop(self, grad: tf.Tensor, state: LBFGSState, newest: tf.Tensor) -> tf.Tensor:
        """H @ grad for the L-BFGS inverse Hessian H of the pairs in the ring, `newest` the
        slot of the newest; empty slots (rho 0) contribute nothing."""
        slots = [(newest - i) % self.history for i in range(self.history)]  # newest first
        rhos = [tf.gather(state.rho, k) for k in slots]
        q, alphas = grad, []
        for k, rho in zip(slots, rhos):
            alpha = rho * _dot(_read(state.s, k, after=q), q)
            q = q - alpha * _read(state.y, k, after=alpha)
            alphas.append(alpha)
        largest = tf.reduce_max(tf.abs(grad), axis=[1, 2, 3], keepdims=True)
        r = q * tf.where(state.gamma > 0.0, state.gamma, 1.0 / tf.maximum(largest, 1e-30))
        for k, rho, alpha in reversed(list(zip(slots, rhos, alphas))):
            beta = rho * _dot(_read(state.y, k, after=r), r)
            r = r + (alpha - beta) * _read(state.s, k, after=beta)
        return r


def _write(history: tf.Tensor | tf.Variable, slot: tf.Tensor, value: tf.Tensor):
    """`history` with `slot` replaced by `value`: a tf.Variable is written in place and
    returned; a tensor (the serving loop's state) gives a new tensor."""
    value = tf.cast(value, history.dtype)
    if isinstance(history, tf.Variable):
        history.scatter_update(tf.IndexedSlices(value[None], slot[None]))
        return history
    return tf.tensor_scatter_nd_update(history, slot[None, None], value[None])


def _read(history: tf.Tensor | tf.Variable, slot: tf.Tensor, after: tf.Tensor) -> tf.Tensor:
    """history[slot], read once `after` is computed. Unordered, the reads of every slot are
    free to run first, all at once, which holds a second copy of the whole history."""
    with tf.control_dependencies([after]):
        return tf.cast(tf.gather(history, slot), tf.float32)


def finite(terms: dict[str, tf.Tensor], grad: tf.Tensor) -> tf.Tensor:
    """Whether every loss term and every gradient value is finite: the condition for a step."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in (*terms.values(), grad)])


class Average(NamedTuple):
    """An exponential moving average of the iterates x_0 ... x_n with decay d, bias-corrected:
    sum_k d^(n-k) (1-d) x_k over sum_k d^(n-k) (1-d) = 1 - d^(n+1). Decay 0 is the latest
    iterate."""

    total: tf.Tensor  # sum_k d^(n-k) (1-d) x_k, image-shaped
    weight: tf.Tensor  # 1 - d^(n+1), float32 scalar

    @classmethod
    def start(cls, image: tf.Tensor, decay: float) -> Average:
        return cls((1.0 - decay) * image, tf.constant(1.0 - decay))

    def add(self, image: tf.Tensor, decay: float) -> Average:
        return Average(decay * self.total + (1.0 - decay) * image,
                       decay * self.weight + (1.0 - decay))  # fmt: skip

    def value(self) -> tf.Tensor:
        return self.total / self.weight


def minimize(
    terms_and_gradient: Callable[[tf.Tensor, tf.Tensor], tuple[dict[str, tf.Tensor], tf.Tensor]],
    optimizer: Optimizer,
    image: tf.Tensor,
    num_steps: tf.Tensor | int,
    average: float = 0.0,
) -> tf.Tensor:
    """Up to `num_steps` optimizer steps from `image` in a tf.while_loop; returns the image,
    or with `average` > 0 the moving average of the images (Average) with that decay.
    terms_and_gradient(image, step) is given the step number, from 0.

    As in the interactive loop, a step whose loss or gradient is not finite is not taken:
    the loop stops there with the last finite image. The image and the optimizer state are
    loop variables and nothing else is written, so concurrent calls of a served graph
    cannot see each other's state.
    """

    def body(i, ok, image, state, mean):
        terms, grad = terms_and_gradient(image, i)
        ok = finite(terms, grad)

        def update():
            new_image, new_state = optimizer.update(image, grad, state)
            return new_image, new_state, mean.add(new_image, average)

        image, state, mean = tf.cond(ok, update, lambda: (image, state, mean))
        return i + 1, ok, image, state, mean

    *_, mean = tf.while_loop(
        lambda i, ok, image, state, mean: tf.logical_and(ok, i < num_steps),
        body,
        (tf.constant(0), tf.constant(True), image, optimizer.init(image),
         Average.start(image, average)),
        parallel_iterations=1,
    )  # fmt: skip
    return mean.value()


def update_variables(
    optimizer: Optimizer, image: tf.Variable, grad: tf.Tensor, state: NamedTuple
) -> None:
    """One update of an image and optimizer state kept in tf.Variables, as the interactive
    loop keeps them: what the optimizer wrote in place stays, the rest is assigned."""
    new_image, new_state = optimizer.update(image.read_value(), grad, state)
    image.assign(new_image)
    for variable, value in zip(state, new_state):
        if value is not variable:
            variable.assign(value)


def make_optimizer(config: Config) -> Optimizer:
    """The optimizer a config names, with its learning rate."""
    if config.optimizer == "adam":
        return Adam(config.step_size)
    return LBFGS(config.step_size, config.lbfgs_history, history_dtype(config))


def history_dtype(config: Config) -> str:
    """The L-BFGS history's dtype: config.lbfgs_history_dtype, where "auto" is bfloat16 if
    the network computes in bfloat16 (its gradients are rounded as much already) and float32
    otherwise."""
    if config.lbfgs_history_dtype != "auto":
        return config.lbfgs_history_dtype
    return "bfloat16" if computes_in_bfloat16(config.precision) else "float32"
