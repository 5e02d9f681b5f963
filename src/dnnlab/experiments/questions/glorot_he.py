"""glorot-he: what problem do Glorot and He initialization fix?

Unstable signals in deep nets (Géron, chapter 11, "The Vanishing/Exploding
Gradients Problems"). A unit with ``fan_in`` inputs of
second moment ``q`` and weights of variance ``s^2`` has a pre-activation of
variance ``fan_in * s^2 * q``. Unless ``fan_in * s^2`` matches the activation
function, the signal is multiplied by about the same factor at every layer, so
over 20 layers it explodes or fades away, and the gradients do the same on the
way back. With weights drawn from N(0, 1) and 100 inputs the factor is 100:
ReLU-like units explode and sigmoid/tanh units saturate (their derivative is
nearly 0, so gradients vanish). Glorot & Bengio (2010) choose
``s^2 = 2 / (fan_in + fan_out)`` for symmetric, roughly linear activations
(tanh, sigmoid, none); He et al. (2015) ``s^2 = 2 / fan_in`` for ReLU, which
zeroes half of its inputs; LeCun's ``s^2 = 1 / fan_in`` is what SELU needs to
self-normalize (Klambauer et al., 2017).

The experiment needs no training: it draws the weights of a 20 x 100 net with
Keras's initializers (zero biases), runs one forward and one backward pass on
standardized CIFAR-10 images and records each hidden layer's activation mean
and std and the std of the gradient of the loss (mean cross-entropy of a Glorot
uniform 10-unit softmax head, as in :func:`dnnlab.models.build_model`) with
respect to the layer's pre-activations ``z = x W + b``. Stds are pooled over all
images and units of a layer. Every (init, activation) pair is measured with
``ctx.seeds`` weight draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import keras
import numpy as np

from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import seeds, subset
from dnnlab.plots import plt, save_figure

DEPTH = 20
WIDTH = 100
BATCH = 512  # images from the start of the training subset
DATA = subset(10_000)
CLASSES = 10
INITS = ("normal(0,1)", "glorot", "he", "lecun")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "selu")
UNBOUNDED = ("relu", "elu", "selu")  # these explode; sigmoid and tanh saturate instead

# Two orders of magnitude between layer 1 and layer 20: far beyond what
# float32 training with one learning rate for all layers tolerates.
EXPLODES = 100.0
# "Kept": every layer's std within a factor 3 of layer 1's (at most ~6% per layer
# over 20 layers), the "factor 2-3" that the chapter's figures show as stable.
KEEP = 3.0
# A unit is saturated where its derivative is below 10% of the activation's
# largest derivative: it passes back less than a tenth of the gradient it could.
SATURATED_DERIVATIVE = 0.1
# Saturation is the net's state when most units (averaged over layers) are saturated.
SATURATES = 0.5
# Self-normalized: every layer's mean within 0.2 of 0 and std within 0.2 of 1
# (the fixed point (0, 1) of Klambauer et al., with finite-width noise).
SELF_NORMAL_MEAN = 0.2
SELF_NORMAL_STD = 0.2


def initializer(name: str, seed: int) -> keras.initializers.Initializer:
    """Keras's initializer for ``name`` (one of :data:`INITS`), seeded."""
    if name == "normal(0,1)":
        return keras.initializers.RandomNormal(mean=0.0, stddev=1.0, seed=seed)
    makers = {
        "glorot": keras.initializers.GlorotNormal,
        "he": keras.initializers.HeNormal,
        "lecun": keras.initializers.LecunNormal,
    }
    return makers[name](seed=seed)


def draw_kernels(init: str, fan_in: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``DEPTH`` hidden kernels of ``WIDTH`` units drawn with ``init``, and the softmax head's."""
    kernels = []
    shapes = [(fan_in, WIDTH)] + [(WIDTH, WIDTH)] * (DEPTH - 1)
    for i, shape in enumerate(shapes):
        draw = initializer(init, seed * 1000 + i)
        kernels.append(keras.ops.convert_to_numpy(draw(shape, dtype="float32")))
    head = keras.initializers.GlorotUniform(seed=seed * 1000 + DEPTH)((WIDTH, CLASSES))
    return kernels, keras.ops.convert_to_numpy(head)


def _activation(activation: str | Callable) -> Callable:
    return keras.activations.get(activation) if isinstance(activation, str) else activation


def derivative(activation: str | Callable, z) -> np.ndarray:
    """f'(z) elementwise, by forward-mode differentiation of the activation."""
    f = _activation(activation)
    z = jnp.asarray(z, dtype=jnp.float32)
    _, slope = jax.jvp(f, (z,), (jnp.ones_like(z),))
    return np.asarray(slope, dtype=np.float64)


def signal_stats(
    x: np.ndarray,
    kernels: Sequence[np.ndarray],
    activation: str | Callable,
    head: np.ndarray,
    labels: np.ndarray,
) -> dict[str, list[float]]:
    """Per hidden layer: activation mean and std, gradient std, saturated fraction.

    ``x`` is ``(n, features)``; layer ``l`` computes ``a_l = f(a_{l-1} W_l)``
    (zero biases). The gradient is d(mean cross-entropy of ``a_L head``)/d z_l,
    taken with respect to a zero offset added to each ``z_l``. Stds are computed
    in float64 from the float32 passes, so exploded signals do not overflow.
    """
    f = _activation(activation)
    x = jnp.asarray(x, dtype=jnp.float32)
    labels = jnp.asarray(labels, dtype=jnp.int32)

    def loss(offsets):
        a, zs, outs = x, [], []
        for w, offset in zip(kernels, offsets, strict=True):
            z = a @ jnp.asarray(w) + offset
            a = f(z)
            zs.append(z)
            outs.append(a)
        logits = a @ jnp.asarray(head)
        nll = jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(
            logits, labels[:, None], axis=1
        ).squeeze(1)
        return jnp.mean(nll), (zs, outs)

    offsets = [jnp.zeros((x.shape[0], w.shape[1]), jnp.float32) for w in kernels]
    grads, (zs, outs) = jax.grad(loss, has_aux=True)(offsets)
    peak = float(derivative(f, np.linspace(-5.0, 5.0, 1001)).max())
    out: dict[str, list[float]] = {
        "activation_mean": [],
        "activation_std": [],
        "gradient_std": [],
        "saturated": [],
    }
    for z, a, g in zip(zs, outs, grads, strict=True):
        a64, g64 = np.asarray(a, np.float64), np.asarray(g, np.float64)
        out["activation_mean"].append(float(a64.mean()))
        out["activation_std"].append(float(a64.std()))
        out["gradient_std"].append(float(g64.std()))
        out["saturated"].append(float(np.mean(derivative(f, z) < SATURATED_DERIVATIVE * peak)))
    return out


def ratio(stds: Sequence[float]) -> float:
    """Last layer's std over the first layer's (activations: > 1 explodes, < 1 fades)."""
    return float(stds[-1] / stds[0]) if stds[0] > 0 else math.inf


def within(stds: Sequence[float], factor: float) -> bool:
    """Is every layer's std within ``factor`` (either way) of the first layer's?"""
    s = np.asarray(stds, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        return False
    return bool(np.max(np.abs(np.log(s / s[0]))) <= math.log(factor))


def self_normalized(
    means: Sequence[float],
    stds: Sequence[float],
    mean_tol: float = SELF_NORMAL_MEAN,
    std_tol: float = SELF_NORMAL_STD,
) -> bool:
    """Does every layer have |mean| <= ``mean_tol`` and |std - 1| <= ``std_tol``?"""
    m, s = np.asarray(means, np.float64), np.asarray(stds, np.float64)
    return bool(np.all(np.abs(m) <= mean_tol) and np.all(np.abs(s - 1.0) <= std_tol))


def measure(x: np.ndarray, labels: np.ndarray, draws: Sequence[int]) -> dict:
    """``{init: {activation: [signal_stats per weight draw]}}`` for every pair."""
    table: dict = {init: {act: [] for act in ACTIVATIONS} for init in INITS}
    for init in INITS:
        for seed in draws:
            kernels, head = draw_kernels(init, x.shape[1], seed)
            for act in ACTIVATIONS:
                table[init][act].append(signal_stats(x, kernels, act, head, labels))
    return table


def run(ctx: Context) -> Result:
    splits = ctx.load_splits(DATA)
    x = splits.x_train[:BATCH].reshape(min(BATCH, len(splits.x_train)), -1)
    labels = splits.y_train[: len(x)]
    draws = seeds(ctx)
    table = measure(x, labels, draws)

    def each(init: str, act: str, key: str, fn: Callable) -> list:
        return [fn(r[key]) for r in table[init][act]]

    act_ratio = {i: {a: each(i, a, "activation_std", ratio) for a in ACTIVATIONS} for i in INITS}
    grad_ratio = {  # first layer over last: > 1 the gradient grows toward the input
        i: {a: each(i, a, "gradient_std", lambda s: 1 / ratio(s)) for a in ACTIVATIONS}
        for i in INITS
    }
    saturation = {
        i: {a: each(i, a, "saturated", lambda s: float(np.mean(s))) for a in ACTIVATIONS}
        for i in INITS
    }

    def kept(init: str, act: str, key: str = "activation_std") -> bool:
        return all(each(init, act, key, lambda s: within(s, KEEP)))

    exploded = {a: all(r >= EXPLODES for r in act_ratio["normal(0,1)"][a]) for a in UNBOUNDED}
    saturated = {
        a: all(f >= SATURATES for f in saturation["normal(0,1)"][a]) for a in ("sigmoid", "tanh")
    }
    lecun_selu = [
        self_normalized(r["activation_mean"], r["activation_std"]) for r in table["lecun"]["selu"]
    ]
    glorot_relu_fades = all(r <= 1 / KEEP for r in act_ratio["glorot"]["relu"])
    glorot_tanh_ok = (
        kept("glorot", "tanh")
        and all(f < SATURATES for f in saturation["glorot"]["tanh"])
        and saturated["tanh"]
    )

    claims = [
        Claim(
            id="glorot-he/normal-1-explodes-or-saturates",
            text=f"With N(0, 1) weights a {DEPTH}-layer net's signal explodes (ReLU, ELU, SELU: "
            f"activation std grows >= {EXPLODES:g}x from layer 1 to layer {DEPTH}) or "
            f"saturates (sigmoid, tanh: >= {SATURATES:.0%} of the unit outputs, averaged over "
            f"layers, have a derivative below {SATURATED_DERIVATIVE:.0%} of its peak)",
            supported=all(exploded.values()) and all(saturated.values()),
            evidence={
                **{f"std_ratio_last_first_{a}": act_ratio["normal(0,1)"][a] for a in UNBOUNDED},
                **{
                    f"saturated_fraction_{a}": saturation["normal(0,1)"][a]
                    for a in ("sigmoid", "tanh")
                },
                **{
                    f"gradient_ratio_first_last_{a}": grad_ratio["normal(0,1)"][a]
                    for a in ACTIVATIONS
                },
            },
        ),
        Claim(
            id="glorot-he/glorot-fades-relu-signal",
            text="Glorot init, derived for symmetric activations, lets a ReLU net's activations "
            f"fade (std at layer {DEPTH} below 1/{KEEP:g} of layer 1's): the problem He init "
            "fixes by doubling the weight variance",
            supported=glorot_relu_fades,
            evidence={
                "std_ratio_last_first_glorot_relu": act_ratio["glorot"]["relu"],
                "std_ratio_last_first_he_relu": act_ratio["he"]["relu"],
            },
        ),
        Claim(
            id="glorot-he/he-keeps-relu-signal",
            text=f"He init keeps a ReLU net's activation std within a factor {KEEP:g} of layer "
            f"1's at every one of {DEPTH} layers, while N(0, 1) weights do not",
            supported=kept("he", "relu") and not kept("normal(0,1)", "relu"),
            evidence={
                "std_ratio_last_first_he_relu": act_ratio["he"]["relu"],
                "max_min_std_he_relu": each("he", "relu", "activation_std", _spread),
                "std_ratio_last_first_normal_relu": act_ratio["normal(0,1)"]["relu"],
            },
        ),
        Claim(
            id="glorot-he/he-keeps-relu-gradients",
            text=f"With He init a ReLU net's gradient std stays within a factor {KEEP:g} of "
            f"layer 1's at every layer on the way back, while with N(0, 1) weights it does not",
            supported=kept("he", "relu", "gradient_std")
            and not kept("normal(0,1)", "relu", "gradient_std"),
            evidence={
                "gradient_ratio_first_last_he_relu": grad_ratio["he"]["relu"],
                "max_min_gradient_std_he_relu": each("he", "relu", "gradient_std", _spread),
                "gradient_ratio_first_last_normal_relu": grad_ratio["normal(0,1)"]["relu"],
            },
        ),
        Claim(
            id="glorot-he/glorot-keeps-tanh-signal",
            text=f"Glorot init keeps a tanh net's activation std within a factor {KEEP:g} of "
            f"layer 1's over {DEPTH} layers without saturating it (N(0, 1) weights saturate it)",
            supported=glorot_tanh_ok,
            evidence={
                "std_ratio_last_first_glorot_tanh": act_ratio["glorot"]["tanh"],
                "max_min_std_glorot_tanh": each("glorot", "tanh", "activation_std", _spread),
                "saturated_fraction_glorot_tanh": saturation["glorot"]["tanh"],
                "saturated_fraction_normal_tanh": saturation["normal(0,1)"]["tanh"],
                "gradient_ratio_first_last_glorot_tanh": grad_ratio["glorot"]["tanh"],
            },
        ),
        Claim(
            id="glorot-he/lecun-selu-self-normalizes",
            text="With LeCun init and standardized inputs a SELU net self-normalizes: every "
            f"layer's activation mean is within {SELF_NORMAL_MEAN:g} of 0 and its std within "
            f"{SELF_NORMAL_STD:g} of 1",
            supported=all(lecun_selu),
            evidence={
                "max_abs_mean": [
                    max(map(abs, r["activation_mean"])) for r in table["lecun"]["selu"]
                ],
                "max_abs_std_minus_1": [
                    max(abs(s - 1) for s in r["activation_std"]) for r in table["lecun"]["selu"]
                ],
                "std_ratio_last_first_he_selu": act_ratio["he"]["selu"],
            },
        ),
    ]
    _figure(table, ctx)
    answer = _answer(act_ratio, grad_ratio, saturation, claims, len(draws))
    details = {
        "net": f"{DEPTH} x {WIDTH}, zero biases, Glorot uniform softmax head",
        "images": len(x),
        "weight_draws": draws,
        "gradient": "d(mean cross-entropy)/d(pre-activation z), std over images and units",
        **{
            key: {i: {a: [r[key] for r in table[i][a]] for a in ACTIVATIONS} for i in INITS}
            for key in ("activation_std", "activation_mean", "gradient_std", "saturated")
        },
    }
    return Result(claims=claims, answer=answer, figures=["glorot_he.png"], details=details)


def _spread(stds: Sequence[float]) -> float:
    s = np.asarray(stds, np.float64)
    return float(s.max() / s.min()) if s.min() > 0 else math.inf


def _geomean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _answer(act_ratio, grad_ratio, saturation, claims, n_draws: int) -> str:
    verdict = {c.id.split("/", 1)[1]: c.supported for c in claims}
    g = {i: {a: _geomean(v) for a, v in d.items()} for i, d in act_ratio.items()}
    gg = {i: {a: _geomean(v) for a, v in d.items()} for i, d in grad_ratio.items()}
    sat = {i: {a: float(np.mean(saturation[i][a])) for a in ("sigmoid", "tanh")} for i in INITS}
    rescued = any(1 / KEEP <= gg[i]["sigmoid"] <= KEEP for i in INITS)
    sigmoid = "Some init keeps" if rescued else "No init keeps"
    return (
        "They fix the unstable signal of deep nets, forward and backward. "
        f"With N(0, 1) weights the activation std of a {DEPTH}-layer ReLU net grows "
        f"{g['normal(0,1)']['relu']:.2g}x from layer 1 to layer {DEPTH} and its gradient "
        f"{gg['normal(0,1)']['relu']:.2g}x from layer {DEPTH} back to layer 1, while "
        f"{100 * sat['normal(0,1)']['sigmoid']:.0f}% of sigmoid and "
        f"{100 * sat['normal(0,1)']['tanh']:.0f}% of tanh outputs are saturated. "
        f"Glorot init brings tanh saturation down to {100 * sat['glorot']['tanh']:.0f}%, but "
        f"the tanh activation std still ends at {g['glorot']['tanh']:.2g}x layer 1's "
        f"(gradient, layer 1 over layer {DEPTH}: {gg['glorot']['tanh']:.2g}x), "
        f"{'within' if verdict['glorot-keeps-tanh-signal'] else 'outside'} the factor "
        f"{KEEP:g} called stable here. With ReLU, Glorot's variance lets the signal fade to "
        f"{g['glorot']['relu']:.2g}x; He init's doubled variance keeps it at "
        f"{g['he']['relu']:.2g}x (gradient {gg['he']['relu']:.2g}x). LeCun + SELU ends at "
        f"{g['lecun']['selu']:.2g}x and "
        f"{'stays' if verdict['lecun-selu-self-normalizes'] else 'does not stay'} "
        "self-normalized at every layer. "
        f"{sigmoid} sigmoid's gradient within a factor {KEEP:g}: by layer 1 it is "
        f"{gg['glorot']['sigmoid']:.2g}x its "
        f"layer-{DEPTH} size with Glorot init, {gg['he']['sigmoid']:.2g}x with He, "
        f"{gg['lecun']['sigmoid']:.2g}x with LeCun (sigmoid's derivative is at most 0.25). "
        f"Geometric means over {n_draws} weight draws; "
        f"{sum(verdict.values())} of {len(verdict)} claims are supported."
    )


def _figure(table: dict, ctx: Context) -> None:
    fig, axes = plt.subplots(
        2, len(ACTIVATIONS), figsize=(3.2 * len(ACTIVATIONS), 6.4), constrained_layout=True
    )
    layers = np.arange(1, DEPTH + 1)
    for col, act in enumerate(ACTIVATIONS):
        for row, key in enumerate(("activation_std", "gradient_std")):
            ax = axes[row, col]
            for init in INITS:
                stds = np.array([r[key] for r in table[init][act]], dtype=np.float64)
                with np.errstate(divide="ignore"):
                    line = np.exp(np.log(stds).mean(axis=0))
                ax.plot(layers[: len(line)], line, marker=".", label=init)
            ax.set_yscale("log")
            ax.grid(alpha=0.3, which="both")
            ax.set_xlabel("hidden layer")
            if row == 0:
                ax.set_title(act)
            if col == 0:
                ax.set_ylabel("activation std" if row == 0 else "gradient std (dL/dz)")
    axes[0, 0].legend(fontsize=8)
    save_figure(fig, ctx.folder / "glorot_he.png")


QUESTION = Question(
    id="glorot-he",
    question="What problem do Glorot and He initialization fix?",
    data=f"CIFAR-10, {BATCH} standardized training images; untrained {DEPTH} x {WIDTH} nets, "
    "one forward and backward pass per init, activation and weight draw",
    run=run,
)
