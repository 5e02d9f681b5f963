"""What the question experiments share: CIFAR-10 subsets, one short fit, seeds, the margins,
and the distinct-neuron probe.

Accuracy claims are judged on the test set: each small net is evaluated on it
once, on its restored best weights, and the validation set (used to pick those
weights) is never the ground for a claim.

The activation questions also share two probes, an activation's derivative
(:func:`derivative`) and a layer stack's distance from self-normalization
(:func:`normalization_gap`), and one rule for "is this per-seed quantity above
or below a threshold" (:func:`versus_threshold`: a 95% interval over seeds,
three-valued), with :func:`all_of` to join such verdicts and :func:`with_control`
to make a claim wait for its control.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.experiments.questions import Context
from dnnlab.models import hidden_dense_layers
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED
from dnnlab.train import TrainOutcome, epoch_timing, train

FIRST_SEED = 42


def subset(train_size: int = 10_000, *, standardize: bool = True) -> DataConfig:
    """The first ``train_size`` training images after the book's 5,000 validation images."""
    return DataConfig(validation_size=5000, train_size=train_size, standardize=standardize)


def seeds(ctx: Context) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + ctx.seeds))


def fit(
    ctx: Context,
    *,
    model: ModelConfig,
    train_config: TrainConfig,
    data: DataConfig,
    seed: int,
    prepare: Callable[[keras.Model], None] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainOutcome:
    """Train one small net on a subset; its restored best weights are evaluated on test once."""
    config = RunConfig(variant="question", seed=seed, model=model, train=train_config, data=data)
    return train(
        config,
        ctx.load_splits(data),
        verbose=ctx.verbose,
        prepare=prepare,
        callbacks=callbacks,
        evaluate_test=True,
    )


def fit_many(ctx: Context, runs: Sequence[Mapping[str, Any]]) -> list[TrainOutcome]:
    """:func:`fit` for each of ``runs`` (its keyword arguments), in order, trained together.

    Runs that share an architecture (seeds of one arm, rates of one net) are the
    members of one compiled program (:func:`dnnlab.many.train_many`): equal to
    one by one within rounding, cheaper, and with per-run seconds that are the
    group's, so timing claims never read them. Runs with ``callbacks`` train one
    by one.
    """
    from dnnlab.many import groups, train_many

    configs = [
        RunConfig(
            variant="question",
            seed=r["seed"],
            model=r["model"],
            train=r["train_config"],
            data=r["data"],
        )
        for r in runs
    ]
    outcomes: list[TrainOutcome | None] = [None] * len(runs)
    together = [i for i, r in enumerate(runs) if not r.get("callbacks")]
    for i in set(range(len(runs))) - set(together):
        outcomes[i] = fit(ctx, **runs[i])
    for group in groups([configs[i] for i in together]):
        members = [together[k] for k in group]
        trained = train_many(
            [configs[i] for i in members],
            ctx.load_splits(configs[members[0]].data),
            prepare=[runs[i].get("prepare") for i in members],
        )
        for i, outcome in zip(members, trained, strict=True):
            outcomes[i] = outcome
    return outcomes


def time_epochs(
    splits,
    models: dict[str, ModelConfig],
    train_config: TrainConfig,
    *,
    reference: str,
    **protocol: Any,
) -> dict[str, Any]:
    """One training epoch of each fresh ``models`` net on ``splits``, timed single-threaded.

    The questions' one timing arm: :func:`dnnlab.train.epoch_timing` (interleaved
    rounds, CPU time, a subprocess with one XLA thread on one core), every net
    seeded with :data:`FIRST_SEED`. ``protocol`` goes to :func:`dnnlab.timing.interleave`.
    """
    configs = {
        name: RunConfig(variant="question", seed=FIRST_SEED, model=model, train=train_config)
        for name, model in models.items()
    }
    return epoch_timing(configs, splits.x_train, splits.y_train, reference=reference, **protocol)


# The probes and the threshold rule shared by the activation questions (glorot-he, elu-vs-relu).

# Self-normalized: every layer's activation mean within 0.2 of 0 and std within 0.2 of 1, the
# fixed point (0, 1) of Klambauer et al. (2017) with the noise of a finite layer of 100 units
# on a finite batch; a std off by more than 20% compounds over layers, which is what the
# fixed point is meant to prevent.
NORMAL_TOLERANCE = 0.2
# Log ratios are clamped here: a std that overflowed float32 (stored as None) or fell to 0
# reads as the largest or smallest ratio float64 can hold, beyond every threshold.
_LOG_LIMIT = math.log(sys.float_info.max)


def derivative(activation: str | Callable, z) -> np.ndarray:
    """f'(z) elementwise, by forward-mode differentiation of Keras's activation function."""
    f = keras.activations.get(activation) if isinstance(activation, str) else activation
    z = jnp.asarray(z, dtype=jnp.float32)
    _, slope = jax.jvp(f, (z,), (jnp.ones_like(z),))
    return np.asarray(slope, dtype=np.float64)


def normalization_gap(means: Sequence[float | None], stds: Sequence[float | None]) -> float:
    """The worst layer's distance from self-normalization: max over layers of |mean|, |std - 1|.

    A layer is within :data:`NORMAL_TOLERANCE` of the fixed point (0, 1) iff its
    gap is at most the tolerance; a moment that overflowed (None, inf, NaN)
    is infinitely far.
    """
    if not _finite(means, stds):
        return math.inf
    return max([abs(m) for m in means] + [abs(s - 1.0) for s in stds])


def _finite(*lists: Sequence[float | None]) -> bool:
    return all(v is not None and math.isfinite(v) for values in lists for v in values)


def _logs(values: Sequence[float | None]) -> np.ndarray:
    out = []
    for v in values:
        if v is None or math.isnan(v) or v == math.inf:
            out.append(_LOG_LIMIT)
        else:
            out.append(-_LOG_LIMIT if v <= 0 else max(min(math.log(v), _LOG_LIMIT), -_LOG_LIMIT))
    return np.asarray(out)


def _exp(x: float) -> float:
    return math.inf if x >= _LOG_LIMIT else math.exp(x)


SIDES = ("above", "below")


def versus_threshold(
    values: Sequence[float | None], threshold: float, *, side: str, log: bool = False
) -> dict[str, Any]:
    """Is the quantity (one value per seed) on ``side`` of ``threshold``, beyond seed noise?

    The 95% Student-t interval of the mean over seeds (:func:`dnnlab.stats.describe`;
    of the mean log when ``log``, for ratios and stds, reported as a geometric
    mean): supported if it lies wholly on ``side`` of the threshold, refuted if
    wholly on the other side, otherwise (or with one seed, which gives no
    interval) inconclusive. With ``log``, values that overflowed (None, inf,
    NaN) count as the largest float64 and zeros as the smallest; without it,
    every value must be finite.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if log:
        d = stats.describe(_logs(values))
        back = _exp
        t = math.log(threshold)
    else:
        d = stats.describe(values)  # finite values only: it raises on NaN or inf
        back, t = float, threshold
    low, high = d["ci95_low"], d["ci95_high"]
    if low is None or high is None or low <= t <= high:
        verdict = INCONCLUSIVE
    else:
        verdict = SUPPORTED if (low > t) == (side == "above") else REFUTED
    return {
        "n": d["n"],
        "estimate": back(d["mean"]),
        "ci95_low": None if low is None else back(low),
        "ci95_high": None if high is None else back(high),
        "threshold": threshold,
        "side": side,
        "verdict": verdict,
    }


def threshold_rule(quantity: str, threshold: str, side: str, *, log: bool = False) -> str:
    """The rule of :func:`versus_threshold` in words."""
    other = "below" if side == "above" else "above"
    mean = "geometric mean" if log else "mean"
    return (
        f"95% CI over seeds of the {mean} of {quantity}: supported if it lies wholly {side} "
        f"{threshold}, refuted if wholly {other} it; otherwise, or with one seed, inconclusive"
    )


def describe_threshold(test: dict[str, Any], digits: str = ".3g") -> str:
    """'0.012 (95% CI 0.010 to 0.014, 3 seeds)', or the estimate alone without an interval."""
    est = f"{test['estimate']:{digits}}"
    if test["ci95_low"] is None:
        return f"{est} (1 seed, no interval)"
    return (
        f"{est} (95% CI {test['ci95_low']:{digits}} to {test['ci95_high']:{digits}}, "
        f"{test['n']} seeds)"
    )


def all_of(verdicts: Sequence[str]) -> str:
    """A conjunction of verdicts: supported if all are, refuted if any is, else inconclusive."""
    if any(v == REFUTED for v in verdicts):
        return REFUTED
    return SUPPORTED if all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE


def with_control(verdict: str, control: str) -> str:
    """A claim whose control must show the contrast: supported only if the control is too.

    A supported verdict becomes inconclusive when the control is not supported
    (the measurement could not show the difference the claim is about);
    refuted and inconclusive verdicts stand.
    """
    return INCONCLUSIVE if verdict == SUPPORTED and control != SUPPORTED else verdict


def distinct_neurons(kernel: np.ndarray, bias: np.ndarray | None = None, rtol: float = 1e-5) -> int:
    """How many different neurons a Dense layer holds: its distinct (column, bias) pairs.

    Column j of a ``(fan_in, units)`` kernel is neuron j's incoming weights and
    ``bias[j]`` its bias; two neurons compute the same function (and, fed the
    same gradients, stay the same) only when both agree. They count as one when
    they agree to ``rtol`` of the layer's largest weight (float32 training
    leaves exact copies exact, but be lenient).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if bias is not None:
        kernel = np.vstack([kernel, np.asarray(bias, dtype=np.float64).reshape(1, -1)])
    atol = rtol * max(float(np.abs(kernel).max()), 1e-30)
    representatives: list[np.ndarray] = []
    for column in kernel.T:
        if not any(np.abs(column - r).max() <= atol for r in representatives):
            representatives.append(column)
    return len(representatives)


def neuron_counts(model: keras.Model) -> list[int]:
    """Distinct neurons (distinct incoming weights and bias) of each hidden Dense layer."""
    return [
        distinct_neurons(
            keras.ops.convert_to_numpy(d.kernel),
            keras.ops.convert_to_numpy(d.bias) if d.use_bias else None,
        )
        for d in hidden_dense_layers(model)
    ]
