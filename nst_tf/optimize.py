"""Adam and L-BFGS as functions (image, gradient, loss, state) -> (next image, new state).

Each update is given one evaluation (an image, its gradient and its loss) and returns the
next image to evaluate; `result` is what the run has made so far. The same math serves the
interactive loop, which keeps the state in tf.Variables, and the exported serving loop,
which carries it as tf.while_loop variables so concurrent requests never share state.
Given tensors, an update is pure; given variables, L-BFGS writes its history into them in
place and returns them in the new state (see LBFGS). Every update
projects the image back to [0, 255]. Nothing here is data-dependent Python control flow, so
both compile under XLA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np
import tensorflow as tf

from nst_tf.colors import LUMA
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
        self, image: tf.Tensor, grad: tf.Tensor, loss: tf.Tensor, state: NamedTuple
    ) -> tuple[tf.Tensor, NamedTuple]: ...

    def result(self, image: tf.Tensor, state: NamedTuple) -> tf.Tensor: ...

    def steps(self, state: NamedTuple) -> tf.Tensor: ...


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
        self, image: tf.Tensor, grad: tf.Tensor, loss: tf.Tensor, state: AdamState
    ) -> tuple[tf.Tensor, AdamState]:
        """One step from `image` along its gradient; `loss` is not used."""
        t = state.t + 1.0
        m = self.beta_1 * state.m + (1.0 - self.beta_1) * grad
        v = self.beta_2 * state.v + (1.0 - self.beta_2) * tf.square(grad)
        m_hat = m / (1.0 - tf.pow(self.beta_1, t))
        v_hat = v / (1.0 - tf.pow(self.beta_2, t))
        pixels = tf.cast(tf.shape(image)[1] * tf.shape(image)[2], grad.dtype)
        epsilon = self.epsilon * EPSILON_PIXELS / pixels
        step = self.learning_rate * m_hat / (tf.sqrt(v_hat) + epsilon)
        return project(image - step), AdamState(m=m, v=v, t=t)

    def result(self, image: tf.Tensor, state: AdamState) -> tf.Tensor:
        """What the run has made: the latest image."""
        return image

    def steps(self, state: AdamState) -> tf.Tensor:
        """Steps taken: every update is one."""
        return state.t


class LBFGSState(NamedTuple):
    s: tf.Tensor  # [B, history, H, W, C] position differences, a ring per image (see LBFGS)
    y: tf.Tensor  # [B, history, H, W, C] gradient differences, the same ring
    rho: tf.Tensor  # [B, history, 1, 1, 1] 1 / (s . y); 0 marks an empty slot
    gamma: tf.Tensor  # [B, 1, 1, 1] (s . y) / (y . P y) of the newest pair kept; 0 before one
    prev_image: tf.Tensor  # the last accepted image
    prev_grad: tf.Tensor  # the gradient there
    prev_loss: tf.Tensor  # [B, 1, 1, 1] the loss there; +inf before the first evaluation
    pairs: tf.Tensor  # [B, 1, 1, 1] curvature pairs written so far (the ring's position)
    tries: tf.Tensor  # [B, 1, 1, 1] trial images rejected since the last accepted one
    accepted: tf.Tensor  # [B, 1, 1, 1] steps accepted so far
    t: tf.Tensor  # evaluations so far (updates called), float32 scalar


# Sufficient decrease (Armijo): a trial is accepted if its loss is at most the last accepted
# loss plus ARMIJO times the decrease the gradient predicts for the step, plus LOSS_ROUNDING
# of the loss (the loss of the same image computed twice differs by about that much).
ARMIJO = 1e-4
LOSS_ROUNDING = 1e-5
# A rejected trial is replaced by one this share of its step or less, chosen by fitting a
# parabola to the loss along the step (Nocedal & Wright, 3.5), at least BACKTRACK_MIN.
BACKTRACK_MIN, BACKTRACK_MAX = 0.1, 0.5
# After this many rejections in a row the history is dropped and the next trial is a
# gradient step (the first step's size): a bounded number of extra evaluations per step.
MAX_BACKTRACKS = 4


class LBFGS:
    """Limited-memory BFGS, the optimizer Gatys et al. used, with a backtracking line search.

    Each call of `update` is given one evaluation, the loss and gradient at the image it
    returned last time (a trial), and returns the next image to evaluate: so a run is a
    sequence of evaluations however many the line search needs, and every caller (the
    interactive loop, the served while_loop, the tiled objective, a batch) has it.

    A trial whose loss decreases enough (ARMIJO) is accepted: its curvature pair joins the
    history, and the next trial is `learning_rate` times the quasi-Newton step from it. A
    trial that does not is rejected, and the next one lies back along the same step
    (BACKTRACK_MIN ... BACKTRACK_MAX of it); after MAX_BACKTRACKS rejections the history is
    dropped and the next trial is a plain gradient step. Without it, L-BFGS takes any step
    its curvature estimate proposes, and early ones can turn the photo into noise that the
    rest of the run rebuilds a picture from (QUALITY.md, a line search). `result` is the
    last accepted image, never an unevaluated trial.

    The inverse Hessian comes from the two-loop recursion (Nocedal & Wright, Alg. 7.4) over a
    fixed-size history, so the graph has static shapes and no data-dependent loops. The
    history is a ring per image: its accepted pair number k goes into slot k % history.
    Given tf.Variables as state (the interactive loop) the slot is written in place, so a
    step writes one image-sized pair rather than copying the whole history. The recursion
    starts from gamma P, P = I + `precondition` `smooth_colours` for RGB images and
    gamma = s . y / y . P y of the newest pair (the preconditioned scaling, Nocedal & Wright
    7.20, with P in place of I): a change of colour smooth over SMOOTH_PIXELS goes
    (1 + precondition) times as far, relative to finer detail, as the curvature pairs
    alone would send it, a smooth change of light (1 + LIGHT_SHARE precondition) times.
    Gradient steps on pixels move an image's large areas, their colours most, far more
    slowly than its detail, and ten pairs do not learn that (QUALITY.md, the optimizer's
    preconditioner). With no curvature known yet, the direction is P g scaled by 1/max|g|:
    the gradient step that moves the most sensitive pixel by one grey level, with large
    areas' colours moved up to 1 + precondition times as far. (torch's 1/|g|_1 moves a
    512x512 image by ~1e-6 levels: float32 rounding then swamps the first curvature pair.
    Scaled by 1/max|P g| instead, the first step moved detail by a fraction of a level, and
    two ways of computing the same second step, XLA's and the plain graph's, differed 57
    times as much: QUALITY.md, the preconditioner at every size.)
    P is symmetric positive definite and a curvature pair with s . y <= 0 is not used, which
    keeps the direction a descent one. Each image of a batch [B, H, W, C] has its own
    history, line search and dot products, so a batch takes exactly the steps its images
    would take one at a time; `loss` is per image, [B].

    `line_search=False` accepts every finite trial: for a loss that is itself random
    (style_loss sliced_w2 draws new directions at each evaluation), whose values at two
    images cannot be compared.
    """

    def __init__(
        self,
        learning_rate: float = 1.0,
        history: int = 10,
        history_dtype: str = "float32",
        line_search: bool = True,
        precondition: float = 0.0,
    ):
        self.learning_rate = learning_rate
        self.history = history
        self.history_dtype = tf.as_dtype(history_dtype)
        self.line_search = line_search
        self.precondition = precondition

    def init(self, image: tf.Tensor) -> LBFGSState:
        zeros = tf.zeros_like(image)
        per_image = tf.zeros_like(image[:, :1, :1, :1])
        # A new buffer for each: variables made from them are then written in place from
        # the first step on, where a buffer they shared would be copied on first write.
        ring = lambda like: tf.tile(like[:, None], [1, self.history, 1, 1, 1])  # noqa: E731
        pairs = tf.zeros_like(image, self.history_dtype)
        return LBFGSState(
            s=ring(pairs),
            y=ring(pairs),
            rho=ring(per_image),
            gamma=per_image,
            prev_image=zeros,
            prev_grad=zeros,
            prev_loss=per_image + float("inf"),
            pairs=per_image + 0.0,
            tries=per_image + 0.0,
            accepted=per_image + 0.0,
            t=tf.constant(0.0),
        )

    def update(
        self, image: tf.Tensor, grad: tf.Tensor, loss: tf.Tensor, state: LBFGSState
    ) -> tuple[tf.Tensor, LBFGSState]:
        loss = tf.reshape(tf.cast(loss, tf.float32), [-1, 1, 1, 1])
        step = image - state.prev_image  # the trial's step from the last accepted image
        slope = _dot(state.prev_grad, step)  # the loss's decrease it predicts: < 0
        # A projected step need not be a descent one: then the loss must not rise at all.
        descent = tf.minimum(slope, 0.0)
        bound = state.prev_loss + ARMIJO * descent + LOSS_ROUNDING * tf.abs(state.prev_loss)
        sufficient = loss <= bound if self.line_search else tf.ones_like(loss, tf.bool)
        accept = tf.logical_and(tf.math.is_finite(loss), sufficient)  # [B, 1, 1, 1]
        reset = tf.logical_and(tf.logical_not(accept), state.tries + 1.0 >= MAX_BACKTRACKS)

        # The pair as the history holds it, so rho and gamma agree with what is read back.
        s_new = self._as_kept(step)
        y_new = self._as_kept(grad - state.prev_grad)
        sy = _dot(s_new, y_new)
        use = tf.logical_and(accept, tf.logical_and(state.t > 0.0, sy > 1e-10))
        safe = lambda x: tf.where(use, x, 1.0)  # noqa: E731
        slots = _slots(state.pairs, self.history)
        rho = tf.where(reset[:, None], 0.0, state.rho)  # a reset empties every slot
        gamma = tf.where(reset, 0.0, state.gamma)
        state = state._replace(
            s=_write(state.s, slots, s_new, use),
            y=_write(state.y, slots, y_new, use),
            rho=_write(rho, slots, 1.0 / safe(sy), use),
            gamma=tf.where(use, sy / safe(_dot(y_new, self._preconditioned(y_new))), gamma),
            pairs=state.pairs + tf.cast(use, tf.float32),
        )
        # Accepted: the quasi-Newton step from here. Reset: a gradient step from the last
        # accepted image. Rejected: back along the step, to the parabola's minimum.
        base = tf.where(accept, image, state.prev_image)
        direction = self.two_loop(tf.where(accept, grad, state.prev_grad), state)
        forward = project(base - self.learning_rate * direction)
        rise = loss - state.prev_loss - slope
        fraction = tf.where(
            tf.logical_and(tf.math.is_finite(rise), rise > 0.0),
            -slope / (2.0 * tf.where(rise > 0.0, rise, 1.0)),
            BACKTRACK_MIN,
        )
        back = state.prev_image + tf.clip_by_value(fraction, BACKTRACK_MIN, BACKTRACK_MAX) * step
        new_image = tf.where(tf.logical_or(accept, reset), forward, back)
        return new_image, state._replace(
            prev_image=base,
            prev_grad=tf.where(accept, grad, state.prev_grad),
            prev_loss=tf.where(accept, loss, state.prev_loss),
            tries=tf.where(tf.logical_or(accept, reset), 0.0, state.tries + 1.0),
            accepted=state.accepted + tf.cast(accept, tf.float32),
            t=state.t + 1.0,
        )

    def result(self, image: tf.Tensor, state: LBFGSState) -> tf.Tensor:
        """The last accepted image (`image` itself before the first evaluation)."""
        return tf.where(state.t > 0.0, state.prev_image, image)

    def steps(self, state: LBFGSState) -> tf.Tensor:
        """Steps accepted so far, per image [B, 1, 1, 1]."""
        return state.accepted

    def _as_kept(self, pair: tf.Tensor) -> tf.Tensor:
        """`pair` rounded to the history's dtype (float32 again, for the arithmetic)."""
        return tf.cast(tf.cast(pair, self.history_dtype), pair.dtype)

    def _preconditioned(self, x: tf.Tensor) -> tf.Tensor:
        """P x = x + precondition smooth_colours(x) (P = I for 0)."""
        return x + self.precondition * smooth_colours(x) if self.precondition else x

    def two_loop(self, grad: tf.Tensor, state: LBFGSState) -> tf.Tensor:
        """H @ grad for the L-BFGS inverse Hessian H of each image's pairs in the ring
        (state.pairs of them written so far); empty slots (rho 0) contribute nothing."""
        newest = _slots(state.pairs - 1.0, self.history)
        slots = [(newest - i) % self.history for i in range(self.history)]  # newest first
        rhos = [_read(state.rho, k, after=grad) for k in slots]
        q, alphas = grad, []
        for k, rho in zip(slots, rhos):
            alpha = rho * _dot(_read(state.s, k, after=q), q)
            q = q - alpha * _read(state.y, k, after=alpha)
            alphas.append(alpha)
        r = self._preconditioned(q)
        largest = tf.reduce_max(tf.abs(grad), axis=[1, 2, 3], keepdims=True)  # with no pairs
        r *= tf.where(state.gamma > 0.0, state.gamma, 1.0 / tf.maximum(largest, 1e-30))
        for k, rho, alpha in reversed(list(zip(slots, rhos, alphas))):
            beta = rho * _dot(_read(state.y, k, after=r), r)
            r = r + (alpha - beta) * _read(state.s, k, after=beta)
        return r


def smooth_colours(x: tf.Tensor) -> tf.Tensor:
    """`smooth` of RGB images x [B, H, W, 3], its part along the luminance (Rec. 601 luma)
    taken LIGHT_SHARE times: K (x) (I - (1 - LIGHT_SHARE) l l^T) for the unit luma
    direction l, symmetric and positive semidefinite like K."""
    smoothed = smooth(x)
    luma = tf.constant(LUMA / np.linalg.norm(LUMA), tf.float32)
    light = tf.reduce_sum(smoothed * luma, axis=-1, keepdims=True) * luma
    return smoothed - (1.0 - LIGHT_SHARE) * light


# The preconditioner moves large areas' light this share as much farther as their colour:
# light moved as far as colour takes the photo's light layout with it (QUALITY.md, the
# optimizer's preconditioner).
LIGHT_SHARE = 1 / 30


def smooth(x: tf.Tensor) -> tf.Tensor:
    """K x for images x [B, H, W, C]: x resampled with linear (triangle) weights onto a grid
    of cells about SMOOTH_PIXELS wide, and back by the transpose.

    K = Kh (x) Kw, each Bᵀ B for a resampling B [cells, n] whose rows sum to one, times
    n / cells: symmetric and positive semidefinite, about the identity on what is smooth
    over a cell (a constant field's interior is unchanged) and zero on finer detail. Two
    small matrix products per axis, about 4 n / SMOOTH_PIXELS flops a pixel in all (n the
    longer side): 256 at 512 px, 0.3% of a VGG step's at 8192 px.
    """
    shape = tf.shape(x)
    rows, columns = _resampling(shape[1]), _resampling(shape[2])
    # One axis at a time, in this order, so a graph of unknown shapes (the served one)
    # rounds as the command's does.
    low = tf.einsum("bhwc,jw->bhjc", tf.einsum("ih,bhwc->biwc", rows, x), columns)
    return tf.einsum("bijc,jw->biwc", tf.einsum("ih,bijc->bhjc", rows, low), columns)


def _resampling(n: tf.Tensor) -> tf.Tensor:
    """B [cells, n] times sqrt(n / cells): cells = n / SMOOTH_PIXELS rounded, at least one,
    each a triangle two cells wide centred on the cell, its row summing to one."""
    n = tf.cast(n, tf.float32)
    cells = tf.maximum(tf.round(n / SMOOTH_PIXELS), 1.0)
    width = n / cells
    centres = (tf.range(cells) + 0.5) * width - 0.5
    weights = tf.nn.relu(1.0 - tf.abs(tf.range(n)[None, :] - centres[:, None]) / width)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True) * tf.sqrt(width)


# The width of `smooth`'s cells, in pixels: the size of the changes the preconditioner
# moves farther, the same in pixels at every scale of a run, as VGG's features are (a
# 32nd of the image at the coarsest scale's 256 px; a 32nd at every size slowed runs below
# 256 px, QUALITY.md, the optimizer's preconditioner).
SMOOTH_PIXELS = 8


def _slots(count: tf.Tensor, history: int) -> tf.Tensor:
    """The ring slot of each image's pair number `count` [B, 1, 1, 1]: [B] int32."""
    return tf.cast(tf.reshape(count, [-1]), tf.int32) % history


def _indices(slots: tf.Tensor) -> tf.Tensor:
    """[B, 2] indices (image, slot) into a history [B, history, ...]."""
    return tf.stack([tf.range(tf.shape(slots)[0]), slots], axis=1)


def _write(history: tf.Tensor | tf.Variable, slots: tf.Tensor, value: tf.Tensor, where):
    """`history` [B, history, ...] with each image's slot (slots [B]) set to its `value`
    where `where` [B, 1, 1, 1] holds, left as it is elsewhere: a tf.Variable is written in
    place and returned; a tensor (the serving loop's state) gives a new tensor."""
    indices = _indices(slots)
    value = tf.where(where, tf.cast(value, history.dtype), _gather(history, slots))
    if isinstance(history, tf.Variable):
        history.scatter_nd_update(indices, value)
        return history
    return tf.tensor_scatter_nd_update(history, indices, value)


def _read(history: tf.Tensor | tf.Variable, slots: tf.Tensor, after: tf.Tensor) -> tf.Tensor:
    """Each image's slot of history [B, history, ...] (slots [B]), read once `after` is
    computed. Unordered, the reads of every slot are free to run first, all at once, which
    holds a second copy of the whole history."""
    with tf.control_dependencies([after]):
        return tf.cast(_gather(history, slots), tf.float32)


def _gather(history: tf.Tensor | tf.Variable, slots: tf.Tensor) -> tf.Tensor:
    """Each image's slot of history [B, history, ...] (slots [B]): [B, ...]; from a
    tf.Variable without reading the other slots."""
    return tf.gather(history, slots[:, None], axis=1, batch_dims=1)[:, 0]


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


Evaluate = Callable[[tf.Tensor, tf.Tensor], tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]]


def minimize(
    evaluate: Evaluate,
    optimizer: Optimizer,
    image: tf.Tensor,
    num_steps: tf.Tensor | int,
    average: float = 0.0,
) -> tf.Tensor:
    """Up to `num_steps` evaluations and updates from `image` in a tf.while_loop; returns
    the optimizer's result, or with `average` > 0 the moving average of its results (Average)
    with that decay. evaluate(image, step) gives the loss terms, each image's loss [B] and
    the gradient (nst_tf.objective.Objective.evaluate), given the step number, from 0.

    As in the interactive loop, an evaluation whose loss or gradient is not finite is not
    used: the loop stops there with the last result. The image and the optimizer state are
    loop variables and nothing else is written, so concurrent calls of a served graph
    cannot see each other's state.
    """

    def body(i, ok, image, state, mean):
        terms, loss, grad = evaluate(image, i)
        ok = finite(terms, grad)

        def update():
            new_image, new_state = optimizer.update(image, grad, loss, state)
            return new_image, new_state, mean.add(optimizer.result(new_image, new_state), average)

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
    optimizer: Optimizer, image: tf.Variable, grad: tf.Tensor, loss: tf.Tensor, state: NamedTuple
) -> None:
    """One update of an image and optimizer state kept in tf.Variables, as the interactive
    loop keeps them: what the optimizer wrote in place stays, the rest is assigned."""
    new_image, new_state = optimizer.update(image.read_value(), grad, loss, state)
    image.assign(new_image)
    for variable, value in zip(state, new_state):
        if value is not variable:
            variable.assign(value)


def make_optimizer(config: Config) -> Optimizer:
    """The optimizer a config names, with its learning rate; L-BFGS searches along its
    steps, and is preconditioned, unless the loss is sliced_w2, a different random function
    at each evaluation: without a line search nothing would check the bolder steps."""
    if config.optimizer == "adam":
        return Adam(config.step_size)
    line_search = config.style_loss != "sliced_w2"
    return LBFGS(
        config.step_size,
        config.lbfgs_history,
        history_dtype(config),
        line_search=line_search,
        precondition=config.precondition if line_search else 0.0,
    )


def history_dtype(config: Config) -> str:
    """The L-BFGS history's dtype: config.lbfgs_history_dtype, where "auto" is bfloat16 if
    the network computes in bfloat16 (its gradients are rounded as much already) and float32
    otherwise."""
    if config.lbfgs_history_dtype != "auto":
        return config.lbfgs_history_dtype
    return "bfloat16" if computes_in_bfloat16(config.precision) else "float32"
