"""dropout-cost: does dropout slow down training? Inference? What about MC Dropout?

Géron's answer (chapter 11, question 10): dropout slows training down,
roughly by a factor of two, but not inference, since it is off at prediction
time; MC Dropout is on at inference, and with K samples a prediction costs
about K plain ones. The experiment trains the same 10 x 100 ELU net with and
without dropout (rate 0.2 after every hidden layer), alternating which runs
first from seed to seed, and measures:

* **per-epoch cost**: after the runs, a fresh plain net and a fresh dropout
  net (compiled, one warm-up epoch each) train one epoch each, in alternating
  order, :data:`EPOCH_REPEATS` times; the median of the per-repeat ratios
  dropout / plain. (Each run's own median epoch time, validation included, is
  reported too, but runs minutes apart on a shared machine see different loads.)
  The answer sheet's "roughly a factor of two" is supported when that ratio
  is at least :data:`SLOWER_PER_EPOCH` = 1.5, closer to 2 than to 1;
* **convergence**: the target validation loss is 1.05 x the median over seeds
  of the plain runs' best val_loss. A run's epochs (and wall time) to target
  is the first epoch whose val_loss is at or below it, "never" (infinite) if
  none is. Dropout *slows convergence* when the median over seeds of its
  epochs to target is larger than the plain runs' median;
* **inference**: ``model.predict`` of the validation set by the dropout net and
  the plain net (same architecture otherwise), both warmed up, repeated in
  alternating order; the median of the per-repeat time ratios. "No slowdown"
  means the ratio is within 1 +- :data:`NOISE`;
* **MC Dropout**: :func:`dnnlab.uncertainty.mc_predict` with K samples for K
  in :data:`MC_SAMPLES`, repeated in alternating order, median per K; a line
  ``time = a + b K`` is fitted by least squares. ``mc_predict`` builds and
  compiles its MC network on every call, so ``a`` holds that constant
  overhead, and ``b`` is the cost of one more sample. MC costs "about K plain
  predictions" when the fit is linear (R^2 >= 0.95) and ``b`` is within
  0.5x-2x the time of one warmed-up plain ``model.predict``. What the samples
  buy is scored with the metrics of :mod:`dnnlab.uncertainty` (accuracy,
  NLL, ECE) on the average of the first K samples vs the plain prediction.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from dnnlab import uncertainty
from dnnlab.config import ModelConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.models import build_model
from dnnlab.plots import plt, save_figure
from dnnlab.train import compile_for_training, first_reaching

MODEL = ModelConfig(depth=10, width=100, activation="elu", kernel_initializer="he_normal")
DROPOUT_MODEL = dataclasses.replace(
    MODEL, dropout="dropout", dropout_rate=0.2, dropout_placement="hidden"
)
TRAIN = TrainConfig(learning_rate=5e-4, epochs=10, patience=10, batch_size=32)
DATA = subset(10_000)

TARGET_FACTOR = 1.05  # target val_loss = 1.05 x the plain runs' median best val_loss
MC_SAMPLES = (1, 5, 10, 30)
TIMING_REPEATS = 5  # MC timings (seconds each)
PREDICT_REPEATS = 15  # plain predictions (tens of milliseconds each)
EPOCH_REPEATS = 4
PREDICT_BATCH = 1024  # mc_predict's default batch size, used for plain predictions too
NOISE = 0.15  # inference times within 15% count as equal
SLOWER_PER_EPOCH = 1.5  # a per-epoch ratio at or above this is "about 2x", closer to 2 than to 1
R2_MIN = 0.95
PER_SAMPLE_RANGE = (0.5, 2.0)  # one more MC sample costs 0.5x-2x one plain prediction


def _median_or_inf(values: Sequence[float | None]) -> float:
    """Median where ``None`` ("never") counts as infinitely late."""
    return float(np.median([np.inf if v is None else v for v in values]))


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Least-squares ``y = intercept + slope x`` and R^2 = 1 - SS_res / SS_tot.

    R^2 is ``None`` when ``y`` is constant (SS_tot = 0): a line then explains
    no variation because there is none.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = ys - (intercept + slope * xs)
    total = float(((ys - ys.mean()) ** 2).sum())
    r2 = None if total == 0 else 1.0 - float((residual**2).sum()) / total
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def scaling_check(
    samples: Sequence[int],
    seconds: Sequence[float],
    plain_seconds: float,
    *,
    r2_min: float = R2_MIN,
    per_sample_range: tuple[float, float] = PER_SAMPLE_RANGE,
) -> dict:
    """Does ``seconds`` grow like ``samples`` x one plain prediction (plus a constant)?

    Supported when the line through (samples, seconds) has R^2 >= ``r2_min``
    and its slope (one more sample) is within ``per_sample_range`` x
    ``plain_seconds``.
    """
    line = linear_fit(samples, seconds)
    per_sample = line["slope"] / plain_seconds
    low, high = per_sample_range
    return {
        **line,
        "slope_over_plain": per_sample,
        "ratio_to_one_sample": [s / seconds[0] for s in seconds],
        "supported": bool(
            line["r2"] is not None and line["r2"] >= r2_min and low <= per_sample <= high
        ),
    }


def timed_alternating(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list]:
    """Seconds of each job per repeat; the order is reversed on every other repeat."""
    names = list(jobs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            started = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - started)
    return times


def _predict(model: keras.Model, x: np.ndarray) -> Callable[[], object]:
    return lambda: model.predict(x, batch_size=PREDICT_BATCH, verbose=0)


def epoch_times(splits: Splits, seed: int) -> tuple[dict[str, list], dict[str, list]]:
    """Wall and process-CPU seconds of one training epoch (no validation), alternating.

    Fresh plain and dropout nets, compiled and trained one epoch first, so
    compilation stays off the clock. The CPU time (all threads of this
    process) tells work from waiting when other processes share the cores.
    """
    steps = -(-len(splits.x_train) // TRAIN.batch_size)
    jobs, cpu = {}, {}
    for name, config in (("plain", MODEL), ("dropout", DROPOUT_MODEL)):
        keras.utils.set_random_seed(seed)
        net = compile_for_training(build_model(config, splits.input_shape), TRAIN, steps)
        cpu[name] = []

        def one_epoch(net=net, spent=cpu[name]):
            started = time.process_time()
            net.fit(splits.x_train, splits.y_train, batch_size=TRAIN.batch_size, verbose=0)
            spent.append(time.process_time() - started)

        one_epoch()
        cpu[name].clear()
        jobs[name] = one_epoch
    return timed_alternating(jobs, EPOCH_REPEATS), cpu


def _scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": uncertainty.accuracy(probs, y),
        "nll": uncertainty.nll(probs, y),
        "ece": uncertainty.ece(probs, y),
    }


def run(ctx: Context) -> Result:
    splits = ctx.load_splits(DATA)
    x_valid, y_valid = splits.x_valid, splits.y_valid
    plain_runs, dropout_runs = [], []
    first_models: dict[str, keras.Model] = {}
    mc_scores = []
    for i, seed in enumerate(seeds(ctx)):
        order = [("plain", MODEL, plain_runs), ("dropout", DROPOUT_MODEL, dropout_runs)]
        for name, config, runs in order if i % 2 == 0 else reversed(order):
            outcome = fit(ctx, model=config, train_config=TRAIN, data=DATA, seed=seed)
            runs.append({"seed": seed, "history": outcome.history, **outcome.summary})
            first_models.setdefault(name, outcome.model)
            if name == "dropout":
                draws = uncertainty.mc_predict(
                    outcome.model, x_valid, samples=max(MC_SAMPLES), seed=seed
                )
                plain = outcome.model.predict(x_valid, batch_size=PREDICT_BATCH, verbose=0)
                mc_scores.append(
                    {
                        "seed": seed,
                        "plain": _scores(plain, y_valid),
                        "mc": {
                            k: _scores(draws[:k].mean(axis=0, dtype=np.float64), y_valid)
                            for k in MC_SAMPLES
                        },
                    }
                )

    epochs, epochs_cpu = epoch_times(splits, seeds(ctx)[0])
    dropout_model, plain_model = first_models["dropout"], first_models["plain"]
    jobs = {"plain": _predict(plain_model, x_valid), "dropout": _predict(dropout_model, x_valid)}
    for job in jobs.values():
        job()  # compile outside the clock
    predict_times = timed_alternating(jobs, PREDICT_REPEATS)
    uncertainty.mc_predict(dropout_model, x_valid[:PREDICT_BATCH], samples=1)  # warm-up
    mc_jobs = {
        k: (lambda k=k: uncertainty.mc_predict(dropout_model, x_valid, samples=k, seed=0))
        for k in MC_SAMPLES
    }
    mc_jobs["plain"] = jobs["dropout"]
    mc_times = timed_alternating(mc_jobs, TIMING_REPEATS)
    plain_seconds = statistics.median(mc_times.pop("plain"))
    mc_median = [statistics.median(mc_times[k]) for k in MC_SAMPLES]
    scaling = scaling_check(MC_SAMPLES, mc_median, plain_seconds)

    claims, answer, details = _verdicts(
        plain_runs,
        dropout_runs,
        (epochs, epochs_cpu),
        predict_times,
        scaling,
        mc_median,
        plain_seconds,
        mc_scores,
    )
    _figure(
        plain_runs, dropout_runs, details["target_val_loss"], mc_median, scaling, plain_seconds, ctx
    )
    details["mc_seconds_per_repeat"] = {str(k): v for k, v in mc_times.items()}
    return Result(claims=claims, answer=answer, figures=["dropout_cost.png"], details=details)


def _verdicts(
    plain_runs,
    dropout_runs,
    epoch_seconds,
    predict_times,
    scaling,
    mc_median,
    plain_seconds,
    scores,
):
    target = TARGET_FACTOR * statistics.median(r["best_val_loss"] for r in plain_runs)
    by_seed = {r["seed"]: r for r in plain_runs}
    run_ratios = [
        d["seconds_per_epoch"] / by_seed[d["seed"]]["seconds_per_epoch"] for d in dropout_runs
    ]
    epoch_seconds, epoch_cpu = epoch_seconds
    epoch_ratios = [
        d / p for d, p in zip(epoch_seconds["dropout"], epoch_seconds["plain"], strict=True)
    ]
    cpu_ratios = [d / p for d, p in zip(epoch_cpu["dropout"], epoch_cpu["plain"], strict=True)]
    epoch_ratio = statistics.median(epoch_ratios)
    epochs = {
        name: [first_reaching(r["history"], target) for r in runs]
        for name, runs in (("plain", plain_runs), ("dropout", dropout_runs))
    }
    walls = {
        name: [first_reaching(r["history"], target, field="elapsed") for r in runs]
        for name, runs in (("plain", plain_runs), ("dropout", dropout_runs))
    }
    median_epochs = {name: _median_or_inf(v) for name, v in epochs.items()}
    median_walls = {name: _median_or_inf(v) for name, v in walls.items()}
    slower = median_epochs["dropout"] > median_epochs["plain"]
    predict_ratios = [
        d / p for d, p in zip(predict_times["dropout"], predict_times["plain"], strict=True)
    ]
    predict_ratio = statistics.median(predict_ratios)
    best_acc = {
        name: [r["best_val_accuracy"] for r in runs]
        for name, runs in (("plain", plain_runs), ("dropout", dropout_runs))
    }
    k_max = max(MC_SAMPLES)
    nll_gain = [s["plain"]["nll"] - s["mc"][k_max]["nll"] for s in scores]
    mean_mc = {
        key: float(np.mean([s["mc"][k_max][key] for s in scores]))
        for key in ("accuracy", "nll", "ece")
    }
    mean_plain = {
        key: float(np.mean([s["plain"][key] for s in scores])) for key in ("accuracy", "nll", "ece")
    }

    def never(values):
        return ["never" if v is None else v for v in values]

    claims = [
        Claim(
            id="dropout-cost/slower-per-epoch",
            text="Dropout makes each training epoch about 2x slower (median per-epoch time "
            f"ratio at least {SLOWER_PER_EPOCH})",
            supported=bool(epoch_ratio >= SLOWER_PER_EPOCH),
            evidence={
                "median_epoch_time_ratio": epoch_ratio,
                "ratio_per_repeat": epoch_ratios,
                "plain_epoch_seconds": epoch_seconds["plain"],
                "dropout_epoch_seconds": epoch_seconds["dropout"],
                "median_cpu_time_ratio": statistics.median(cpu_ratios),
                "ratio_of_runs_median_epochs_per_seed": run_ratios,
            },
        ),
        Claim(
            id="dropout-cost/slower-convergence",
            text="Dropout slows convergence: it needs more epochs to reach the target "
            f"validation loss ({TARGET_FACTOR} x the plain net's median best) than the plain net",
            supported=bool(slower),
            evidence={
                "target_val_loss": target,
                "epochs_to_target_plain": never(epochs["plain"]),
                "epochs_to_target_dropout": never(epochs["dropout"]),
                "seconds_to_target_plain": never(walls["plain"]),
                "seconds_to_target_dropout": never(walls["dropout"]),
                "epochs_run": TRAIN.epochs,
                "best_epoch_plain": [r["best_epoch"] for r in plain_runs],
                "best_epoch_dropout": [r["best_epoch"] for r in dropout_runs],
            },
        ),
        Claim(
            id="dropout-cost/no-inference-slowdown",
            text="Dropout adds no inference time: model.predict of the dropout net takes the "
            f"same time as the plain net (ratio within 1 +- {NOISE})",
            supported=bool(abs(predict_ratio - 1) <= NOISE),
            evidence={
                "median_predict_time_ratio": predict_ratio,
                "plain_predict_seconds": predict_times["plain"],
                "dropout_predict_seconds": predict_times["dropout"],
            },
        ),
        Claim(
            id="dropout-cost/mc-cost-scales-with-k",
            text="MC Dropout with K samples costs about K plain predictions (time linear in K, "
            f"R^2 >= {R2_MIN}, each sample {PER_SAMPLE_RANGE[0]}x-{PER_SAMPLE_RANGE[1]}x a plain "
            "predict)",
            supported=scaling["supported"],
            evidence={
                "samples": list(MC_SAMPLES),
                "median_seconds": mc_median,
                "ratio_to_one_sample": scaling["ratio_to_one_sample"],
                "seconds_per_sample": scaling["slope"],
                "constant_overhead_seconds": scaling["intercept"],
                "r2": scaling["r2"],
                "plain_predict_seconds": plain_seconds,
                "per_sample_over_plain": scaling["slope_over_plain"],
            },
        ),
        Claim(
            id="dropout-cost/mc-lowers-nll",
            text=f"Averaging {k_max} MC Dropout samples gives a lower validation NLL than the "
            "plain prediction of the same dropout net, for every seed",
            supported=bool(all(g > 0 for g in nll_gain)),
            evidence={
                "plain_minus_mc_nll": nll_gain,
                "mean_plain": mean_plain,
                "mean_mc": mean_mc,
            },
        ),
    ]

    def fmt_epochs(value: float) -> str:
        return "never" if not np.isfinite(value) else f"{value:g}"

    answer = (
        f"Per training epoch, dropout cost {epoch_ratio:.2f}x the plain net's time (the answer "
        f"sheet says roughly 2x). Epochs to reach val_loss {target:.3f} (median over seeds, "
        f"of {TRAIN.epochs}): "
        f"{fmt_epochs(median_epochs['dropout'])} with dropout vs "
        f"{fmt_epochs(median_epochs['plain'])} without; best validation "
        f"accuracy {100 * np.mean(best_acc['dropout']):.1f}% vs "
        f"{100 * np.mean(best_acc['plain']):.1f}%. Inference: predict took {predict_ratio:.2f}x "
        f"the plain net's time. MC Dropout: each extra sample cost "
        f"{scaling['slope_over_plain']:.2f} plain predictions (R^2 "
        f"{scaling['r2'] if scaling['r2'] is not None else float('nan'):.3f}, plus "
        f"{scaling['intercept']:.2f} s of rebuilding and compiling per call), so "
        f"{k_max} samples took {mc_median[-1] / plain_seconds:.0f}x a plain prediction; they "
        f"bought NLL {mean_mc['nll']:.3f} vs {mean_plain['nll']:.3f}, ECE "
        f"{mean_mc['ece']:.3f} vs {mean_plain['ece']:.3f}, accuracy "
        f"{100 * mean_mc['accuracy']:.1f}% vs {100 * mean_plain['accuracy']:.1f}%."
    )
    details = {
        "model": f"{MODEL.depth} x {MODEL.width} ELU, dropout {DROPOUT_MODEL.dropout_rate} after "
        f"every hidden layer, Nadam {TRAIN.learning_rate:g}, batch {TRAIN.batch_size}, "
        f"{TRAIN.epochs} epochs",
        "epoch_time_includes": "training steps and the validation pass",
        "target_val_loss": target,
        "median_epochs_to_target": {k: fmt_epochs(v) for k, v in median_epochs.items()},
        "median_seconds_to_target": {
            k: (None if not np.isfinite(v) else v) for k, v in median_walls.items()
        },
        "best_val_accuracy": best_acc,
        "best_val_loss": {
            "plain": [r["best_val_loss"] for r in plain_runs],
            "dropout": [r["best_val_loss"] for r in dropout_runs],
        },
        "mc_scores": [{**s, "mc": {str(k): v for k, v in s["mc"].items()}} for s in scores],
        "histories": {
            "plain": [r["history"] for r in plain_runs],
            "dropout": [r["history"] for r in dropout_runs],
        },
    }
    return claims, answer, details


def _figure(
    plain_runs, dropout_runs, target, mc_median, scaling, plain_seconds, ctx: Context
) -> None:
    fig, (ax_epoch, ax_wall, ax_mc) = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    for runs, label, color in ((plain_runs, "no dropout", "C0"), (dropout_runs, "dropout", "C1")):
        for j, r in enumerate(runs):
            h = r["history"]
            kwargs = {"color": color, "alpha": 0.8, "label": label if j == 0 else None}
            ax_epoch.plot([x["epoch"] for x in h], [x["val_loss"] for x in h], **kwargs)
            ax_wall.plot([x["elapsed"] for x in h], [x["val_loss"] for x in h], **kwargs)
    for ax, xlabel in ((ax_epoch, "epoch"), (ax_wall, "wall time (s)")):
        ax.axhline(target, color="grey", linestyle="--", label="target")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.legend()
        ax.grid(alpha=0.3)
    ks = np.array(MC_SAMPLES, dtype=float)
    ax_mc.plot(ks, mc_median, "o", label="mc_predict, median")
    line = np.linspace(0, ks.max(), 50)
    ax_mc.plot(
        line,
        scaling["intercept"] + scaling["slope"] * line,
        "-",
        label=f"fit: {scaling['intercept']:.2f} s + {scaling['slope']:.3f} s x K",
    )
    ax_mc.plot(line, plain_seconds * line, ":", color="grey", label="K plain predictions")
    ax_mc.set_xlabel("MC samples K")
    ax_mc.set_ylabel("seconds for the validation set")
    ax_mc.legend()
    ax_mc.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "dropout_cost.png")


QUESTION = Question(
    id="dropout-cost",
    question="Does dropout slow down training? Does it slow down inference (i.e., making "
    "predictions on new instances)? What about MC Dropout?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 10 x 100 ELU net with and without dropout 0.2, Nadam 5e-4, 10 epochs",
    run=run,
)
