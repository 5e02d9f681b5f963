"""dropout-cost: does dropout slow down training? Inference? What about MC Dropout?

Géron's answer (chapter 11, question 10): dropout slows training down,
roughly by a factor of two, but not inference, since it is off at prediction
time; MC Dropout is on at inference, so K samples cost about K predictions.
The "factor of two" is Srivastava et al. (2014, section 7): "a dropout network
typically takes 2-3 times longer to train than a standard neural network of
the same architecture", because its parameter updates are noisy. That is a
statement about the *training needed to converge*, not about the cost of one
epoch, so the two are measured apart:

* **convergence** (paired by seed): the same 10 x 100 ELU net is trained
  without and then with dropout (rate 0.1 after every hidden layer), same
  seed, same budget (:class:`Settings`), early stopping on validation loss.
  The target is the plain net's best validation loss (:data:`TARGET_FACTOR`
  = 1: the loss it converges to). The dropout net's training stops once it
  reaches the target (no more is needed to time it), after ``patience`` epochs
  without improvement, or at the budget. Per seed, the ratio dropout / plain
  of the epochs and of the CPU seconds to first reach the target; epoch 1's
  CPU time, which includes XLA compilation (a one-off), counts as the run's
  median epoch. The ratio over seeds is the geometric mean with a Student-t
  95% interval on the log ratios. A dropout net that never reached the target
  is *censored*: its ratio is only known to be at least (epochs run + 1) /
  plain epochs, it is shown so, and it can never support the claim.
* **per-epoch cost, inference cost, MC cost**: :func:`dnnlab.timing.interleave`
  (interleaved rounds, process CPU time, ratio with a 95% interval, rounds
  until the interval is narrow): one training epoch of a fresh plain and a
  fresh dropout net; ``model.predict`` of the validation images by the plain
  net and by the dropout net; and K dropout-on forward passes of those images
  (:func:`dnnlab.uncertainty.mc_model`, compiled once) against one plain
  prediction. (:func:`dnnlab.uncertainty.mc_predict`, used for the scores,
  also compiles its sampler on every call: a fixed cost per call, not per sample.)
* **what MC Dropout buys**: per seed, the test-set NLL, accuracy and ECE of
  the dropout net's plain prediction and of the mean of its first K
  :func:`~dnnlab.uncertainty.mc_predict` samples.

Rules. "About x" means within a factor :data:`ABOUT` = sqrt(2) of x: on a log
scale that is closer to x than to its double or its half. Convergence
(epochs and CPU time alike): the 95% interval of the ratio within
[2 / sqrt(2), 2 sqrt(2)] supports "roughly doubles", an interval wholly
outside refutes it (with censored seeds only an interval of the lower bounds
wholly above 2 sqrt(2) can refute it), anything else is inconclusive; so is
the claim when a plain run used the whole budget (its converged loss is then
unknown). Timing claims are judged on the CPU-time ratio's interval with
:func:`dnnlab.timing.judge_ratio`. The NLL claim is :func:`dnnlab.stats.compare`
(paired t-test over seeds, equivalence margin :data:`NLL_MARGIN`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab import stats, timing, uncertainty
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.errors import ConfigError
from dnnlab.experiments.questions import Claim, Context, Fact, Question, claim_from
from dnnlab.experiments.questions.common import fit, seeds_by_pilot, subset, time_epochs
from dnnlab.models import build_model
from dnnlab.plots import save_figure, subplots
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED
from dnnlab.train import first_reaching

# The loss the plain net converges to. A looser target (say 1.05x) is reached by the plain net
# epochs before its best, while its loss is still falling fast: that would time early progress,
# not convergence.
TARGET_FACTOR = 1.0
# "About x": within a factor sqrt(2) of x, i.e. closer to x than to 2x or x/2 on a log scale.
ABOUT = math.sqrt(2.0)
CONVERGENCE_FACTOR = 2.0  # the book's "roughly a factor of two" (Srivastava et al.: 2-3x)
# Each threshold is the statement it tests, quoted with where it comes from (the answer sets
# are in ../shared/seed-answers; the book's answer key is 003_e0e88ed27c9ad342.txt).
# "Takes longer": a dropout epoch costs more than a plain one, a ratio above 1.
SLOWER_EPOCH = 1.0
SLOWER_EPOCH_SOURCE = (
    '002_cc67d16b8f427ed6.txt: "Each training epoch takes longer to complete because of the '
    'additional computations involved with dropout" (longer: a CPU-time ratio above 1)'
)
# "No impact": the text names no margin, so dnnlab reads it as within 20% either way, an
# equivalence band wider than the protocol's noise (about +-5%) and its load allowance.
SAME_INFERENCE = 1.2
SAME_INFERENCE_SOURCE = (
    'book, answer key (003_e0e88ed27c9ad342.txt): dropout "has no impact on inference speed '
    'since it is only turned on during training"; no margin is stated: dnnlab reads "no '
    'impact" as within a factor 1.2 either way'
)
# "Slowed down by a factor of 10 or more" with 10 samples or more: K samples cost at least K
# plain predictions, i.e. one dropout-on pass at least one plain prediction.
MC_PER_SAMPLE = 1.0
MC_SOURCE = (
    'book, answer key (003_e0e88ed27c9ad342.txt): "you generally want to run inference 10 '
    'times or more [...] making predictions is slowed down by a factor of 10 or more" (K '
    "samples cost K plain predictions or more: one pass / one plain prediction at least 1)"
)
CONVERGENCE_SOURCE = (
    'book, answer key (003_e0e88ed27c9ad342.txt, also 004_62d5abefb2c60c7f.txt): "dropout '
    'does slow down training, in general roughly by a factor of two"; "roughly" read by '
    "dnnlab as within a factor sqrt 2 (closer to 2 than to 1 or 4 on a log scale)"
)
# NLL gains below 0.01 nats (1% more probability on the right class, per image) do not matter.
NLL_MARGIN = 0.01
PREDICT_BATCH = 1024  # mc_predict's default batch size, used for plain predictions too


@dataclass(frozen=True)
class Settings:
    """The experiment's sizes; the defaults are the real run."""

    model: ModelConfig = ModelConfig(
        depth=10, width=100, activation="elu", kernel_initializer="he_normal"
    )
    # 0.1, not 0.2: at 0.2 after each of these ten 100-unit layers dropout hurts this net
    # (its best validation loss stays above the plain net's), and the book's "twice as long to
    # train" is about a dropout net trained to a model at least as good.
    dropout_rate: float = 0.1
    # Budget: 30 epochs, patience 5 (the plain net converges within about 10).
    train: TrainConfig = TrainConfig(learning_rate=5e-4, epochs=30, patience=5, batch_size=32)
    data: DataConfig = subset(10_000)
    mc_samples: tuple[int, ...] = (1, 5, 10, 30)  # K scored on the test set
    mc_timing_samples: int = 10  # K timed against one plain prediction
    epoch_rounds: tuple[int, int] = (4, 12)  # min, max interleaved rounds (an epoch each)
    predict_rounds: tuple[int, int] = (4, 30)  # predictions are cheap: allow more rounds
    timing_processes: int = timing.PROCESSES  # each timing's interval is over these processes
    # The NLL claim's seeds: the context's seeds are an internal pilot whose spread of MC minus
    # plain NLL sets how many more run (80% power at NLL_MARGIN), at most this many.
    seed_budget: int = 8

    def dropout_model(self) -> ModelConfig:
        return dataclasses.replace(
            self.model,
            dropout="dropout",
            dropout_rate=self.dropout_rate,
            dropout_placement="hidden",
        )


class CpuClock(keras.callbacks.Callback):
    """Process CPU seconds spent in each epoch (training steps and validation pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.process_time() - self._start)


class StopAtTarget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch whose val_loss is at most ``target``."""

    def __init__(self, target: float | None) -> None:
        super().__init__()
        self.target = target
        self.reached_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if self.target is not None and loss is not None and float(loss) <= self.target:
            self.reached_epoch = epoch + 1
            self.model.stop_training = True


def _scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": uncertainty.accuracy(probs, y),
        "nll": uncertainty.nll(probs, y),
        "ece": uncertainty.ece(probs, y),
    }


def score_on_test(model: keras.Model, splits, samples: tuple[int, ...], seed: int) -> dict:
    """Test-set scores of the plain prediction and of the mean of the first K MC samples."""
    draws = uncertainty.mc_predict(model, splits.x_test, samples=max(samples), seed=seed)
    plain = model.predict(splits.x_test, batch_size=PREDICT_BATCH, verbose=0)
    return {
        "plain": _scores(plain, splits.y_test),
        "mc": {
            str(k): _scores(draws[:k].mean(axis=0, dtype=np.float64), splits.y_test)
            for k in samples
        },
    }


def _arm(outcome, clock: CpuClock) -> dict:
    s = outcome.summary
    history = [
        {
            "epoch": r["epoch"],
            "loss": r["loss"],
            "val_loss": r["val_loss"],
            "val_accuracy": r["val_accuracy"],
            "seconds": r["seconds"],
            "cpu_seconds": cpu,
        }
        for r, cpu in zip(outcome.history, clock.seconds, strict=True)
    ]
    keys = ("status", "epochs_run", "best_epoch", "best_val_loss", "test_accuracy", "test_loss")
    return {**{k: s[k] for k in keys}, "history": history}


def _epoch_timing(splits, settings: Settings) -> dict:
    """One training epoch (no validation) of fresh plain and dropout nets, single-threaded."""
    low, high = settings.epoch_rounds
    return time_epochs(
        splits,
        {"plain": settings.model, "dropout": settings.dropout_model()},
        settings.train,
        reference="plain",
        processes=settings.timing_processes,
        min_rounds=low,
        max_rounds=high,
    )


def predict_arms(
    plain: dict, dropout: dict, weights: str, x: np.ndarray, k: int
) -> dict[str, Callable[[], None]]:
    """Plain net and dropout net ``predict``, and k dropout-on passes: the timing factory.

    ``plain`` and ``dropout`` are :class:`ModelConfig` dicts; ``weights`` the folder
    holding their trained weights (``plain.weights.h5``, ``dropout.weights.h5``).
    """
    models = {}
    for name, config in (("plain", plain), ("dropout", dropout)):
        models[name] = build_model(ModelConfig(**config), x.shape[1:])
        models[name].load_weights(str(Path(weights) / f"{name}.weights.h5"))
    sampler = uncertainty.mc_model(models["dropout"])

    def predict(model):
        return lambda: model.predict(x, batch_size=PREDICT_BATCH, verbose=0)

    def mc():
        for _ in range(k):
            sampler.predict(x, batch_size=PREDICT_BATCH, verbose=0)

    return {"plain": predict(models["plain"]), "dropout": predict(models["dropout"]), "mc": mc}


# The last seed's trained nets, kept beside the measurements so that --retime can time their
# predictions again (plain.weights.h5, dropout.weights.h5).
TIMED_WEIGHTS = "timed-weights"


def _predict_timing(settings: Settings, weights: Path, x: np.ndarray) -> dict:
    """:func:`predict_arms` of the trained nets in ``weights``, single-threaded, against plain."""
    low, high = settings.predict_rounds
    return timing.isolated(
        f"{__name__}:predict_arms",
        {
            "plain": dataclasses.asdict(settings.model),
            "dropout": dataclasses.asdict(settings.dropout_model()),
            "weights": str(weights),
            "k": settings.mc_timing_samples,
        },
        {"x": x},
        reference="plain",
        processes=settings.timing_processes,
        min_rounds=low,
        max_rounds=high,
    )


def retime(ctx: Context, settings: Settings, m: dict) -> dict:
    """The stored measurements with the epoch and prediction timings taken again."""
    weights = ctx.folder / TIMED_WEIGHTS
    if not (weights / "dropout.weights.h5").is_file():
        raise ConfigError(
            f"{weights} holds no trained nets (measured before they were kept): run "
            "`dnnlab questions dropout-cost --force` to measure everything again"
        )
    splits = ctx.load_splits(settings.data)
    return {
        **m,
        "epoch_timing": _epoch_timing(splits, settings),
        "predict_timing": _predict_timing(settings, weights, splits.x_valid),
        "mc_timing_samples": settings.mc_timing_samples,
    }


def measure(ctx: Context, settings: Settings) -> dict:
    """Per seed a plain and a dropout run to the plain net's loss; then the three timings."""
    splits = ctx.load_splits(settings.data)
    models: dict[str, keras.Model] = {}

    def run_seed(seed: int) -> dict:
        clock = CpuClock()
        plain = fit(
            ctx,
            model=settings.model,
            train_config=settings.train,
            data=settings.data,
            seed=seed,
            callbacks=[clock],
        )
        best = plain.summary["best_val_loss"]
        target = TARGET_FACTOR * best if best is not None else None
        dropout_clock, stop = CpuClock(), StopAtTarget(target)
        dropout = fit(
            ctx,
            model=settings.dropout_model(),
            train_config=settings.train,
            data=settings.data,
            seed=seed,
            callbacks=[dropout_clock, stop],
        )
        models.update(plain=plain.model, dropout=dropout.model)  # the last seed's: timed
        return {
            "seed": seed,
            "target_val_loss": target,
            "plain": _arm(plain, clock),
            "dropout": {**_arm(dropout, dropout_clock), "reached_epoch": stop.reached_epoch},
            "test_scores": (
                score_on_test(dropout.model, splits, settings.mc_samples, seed)
                if dropout.summary["status"] == "finished"
                else None
            ),
        }

    def nll_gaps(rows: list[dict]) -> list[float]:
        """MC minus plain test NLL per seed (finished dropout runs): the claim's pairs."""
        plain, mc = nll_pairs({"mc_samples": list(settings.mc_samples), "runs": rows})
        return [b - a for a, b in zip(plain, mc, strict=True)]

    runs, plan = seeds_by_pilot(
        ctx,
        lambda seed_list: [run_seed(seed) for seed in seed_list],
        nll_gaps,
        margin=NLL_MARGIN,
        claim="less",
        budget=settings.seed_budget,
    )
    weights = ctx.folder / TIMED_WEIGHTS
    weights.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save_weights(str(weights / f"{name}.weights.h5"))
    epoch_timing = _epoch_timing(splits, settings)
    predict_timing = _predict_timing(settings, weights, splits.x_valid)
    return {
        "seed_plan": plan,
        "budget_epochs": settings.train.epochs,
        "patience": settings.train.patience,
        "dropout_rate": settings.dropout_rate,
        "target_factor": TARGET_FACTOR,
        "mc_samples": list(settings.mc_samples),
        "mc_timing_samples": settings.mc_timing_samples,
        "timing_images": len(splits.x_valid),
        "test_images": len(splits.x_test),
        "runs": runs,
        "epoch_timing": epoch_timing,
        "predict_timing": predict_timing,
    }


# ---- judging ----------------------------------------------------------------------------------


def training_cpu(history: list[dict], epochs: int) -> float:
    """CPU seconds of the first ``epochs`` epochs, epoch 1 (compilation) at the run's median.

    With one epoch only, that epoch's own time is all there is.
    """
    cpu = [r["cpu_seconds"] for r in history]
    typical = statistics.median(cpu[1:]) if len(cpu) > 1 else cpu[0]
    return typical + sum(cpu[1:epochs])


def to_target(run: dict, target: float) -> dict:
    """Epochs and CPU seconds of each arm to reach ``target``; censored when dropout never did.

    A censored dropout run's epochs are a lower bound (epochs run + 1), its CPU
    seconds too (all the epochs it ran).
    """
    plain, drop = run["plain"]["history"], run["dropout"]["history"]
    e_plain = first_reaching(plain, target)
    e_drop = first_reaching(drop, target)
    censored = e_drop is None
    out = {
        "seed": run["seed"],
        "plain_epochs": e_plain,
        "dropout_epochs": len(drop) + 1 if censored else e_drop,
        "censored": censored,
    }
    if e_plain is None or not drop:
        return {**out, "epoch_ratio": None, "cpu_ratio": None}
    cpu_plain = training_cpu(plain, int(e_plain))
    cpu_drop = training_cpu(drop, len(drop) if censored else int(e_drop))
    return {
        **out,
        "plain_cpu_seconds": cpu_plain,
        "dropout_cpu_seconds": cpu_drop,
        "epoch_ratio": out["dropout_epochs"] / e_plain,
        "cpu_ratio": cpu_drop / cpu_plain,
    }


def ratio_over_seeds(ratios: list[float | None]) -> dict[str, float | None]:
    """Geometric mean of per-seed ratios with a Student-t 95% interval on their logarithms.

    ``None`` ratios (no pair) are left out; with none left the estimate is ``None``.
    """
    known = [r for r in ratios if r is not None]
    if not known:
        return {"estimate": None, "ci95_low": None, "ci95_high": None, "n": 0}
    d = stats.describe(np.log(known))
    return {
        "estimate": math.exp(d["mean"]),
        "ci95_low": None if d["ci95_low"] is None else math.exp(d["ci95_low"]),
        "ci95_high": None if d["ci95_high"] is None else math.exp(d["ci95_high"]),
        "n": d["n"],
    }


def convergence(m: dict) -> dict:
    """Per-seed pairs to target, whether every plain run converged, and both ratios over seeds.

    A seed whose plain run diverged has no target and is left out.
    """
    pairs = [
        to_target(r, TARGET_FACTOR * r["plain"]["best_val_loss"])
        for r in m["runs"]
        if r["plain"]["best_val_loss"] is not None
    ]
    return {
        "pairs": pairs,
        "plain_converged": all(r["plain"]["epochs_run"] < m["budget_epochs"] for r in m["runs"]),
        "censored_seeds": [p["seed"] for p in pairs if p["censored"]],
        "epoch_ratio": ratio_over_seeds([p["epoch_ratio"] for p in pairs]),
        "cpu_ratio": time_to_converge(
            ratio_over_seeds([p["epoch_ratio"] for p in pairs]),
            m["epoch_timing"]["ratios"]["dropout"]["cpu"],
            timing.sample_size(m["epoch_timing"]),
        ),
        "cpu_ratio_of_the_runs": ratio_over_seeds([p["cpu_ratio"] for p in pairs]),
        # Epochs to converge do not depend on the machine's load; the cost of an epoch, timed
        # single-threaded, moves with it by at most its timing's load allowance.
        "allowance": {
            "epoch_ratio": 0.0,
            "cpu_ratio": timing.timing_allowance(m["epoch_timing"]),
        },
    }


def time_to_converge(epochs: dict, per_epoch: dict, per_epoch_n: int) -> dict:
    """Dropout / plain CPU time to converge = epochs to converge x CPU time per epoch.

    The epochs come from the training runs (the load cannot change them), the
    cost of an epoch from the single-threaded interleaved timing (the load
    barely can); the runs' own CPU seconds are multi-threaded and timed apart,
    so a busy machine moves them (kept as evidence, not judged). The product's
    95% interval combines the two log intervals' half-widths in quadrature
    (independent estimates); ``n`` is the smaller sample behind them (seeds, or the
    ``per_epoch_n`` processes or rounds of the timing).
    """
    if epochs["estimate"] is None or per_epoch.get("estimate") is None:
        return {"estimate": None, "ci95_low": None, "ci95_high": None, "n": 0}
    estimate = epochs["estimate"] * per_epoch["estimate"]
    halves = [
        math.log(r["ci95_high"] / r["ci95_low"]) / 2
        for r in (epochs, per_epoch)
        if r.get("ci95_low") is not None
    ]
    if len(halves) < 2:
        return {"estimate": estimate, "ci95_low": None, "ci95_high": None, "n": epochs["n"]}
    half = math.hypot(*halves)
    return {
        "estimate": estimate,
        "ci95_low": estimate * math.exp(-half),
        "ci95_high": estimate * math.exp(half),
        "n": min(epochs["n"], per_epoch_n),
    }


def convergence_rule(c: dict, key: str) -> str:
    low, high = CONVERGENCE_FACTOR / ABOUT, CONVERGENCE_FACTOR * ABOUT
    allowance = c["allowance"][key]
    epochs = (
        "per seed, dropout / plain epochs to first reach the plain net's best validation loss; "
        "geometric mean over seeds with a 95% t-interval on the logs"
    )
    what = (
        epochs
        if key == "epoch_ratio"
        else "CPU time to converge = (" + epochs + ") x (one epoch's dropout / plain CPU time, "
        f"single-threaded interleaved rounds), the log intervals combined in quadrature, "
        f"widened by the {allowance:.0%} load allowance"
    )
    return (
        f"{what}: supported if the interval lies within [{low:.2f}, {high:.2f}] (2x within a "
        "factor sqrt 2), refuted if it lies wholly outside; a dropout run that never reached "
        "the target is censored (its ratio a lower bound): then only an interval of lower "
        f"bounds wholly above {high:.2f} decides (refuted); inconclusive otherwise, with fewer "
        "than 2 seeds, or when a plain run used the whole budget (its converged loss unknown)"
    )


def judge_convergence(c: dict, key: str) -> str:
    """The verdict on "roughly doubles" for ``key`` ("epoch_ratio" or "cpu_ratio") of ``c``."""
    ratio = c[key]
    low, high = CONVERGENCE_FACTOR / ABOUT, CONVERGENCE_FACTOR * ABOUT
    if ratio["estimate"] is None or not c["plain_converged"]:
        return INCONCLUSIVE
    if c["censored_seeds"]:
        above = ratio["ci95_low"] is not None and ratio["ci95_low"] > high
        return REFUTED if above else INCONCLUSIVE
    return timing.judge_ratio(ratio, "within", low, high, allowance=c["allowance"][key])


def convergence_p(c: dict, key: str) -> float | None:
    """The p matching :func:`judge_convergence` (None where censoring or the budget decide)."""
    ratio = c[key]
    if ratio["estimate"] is None or not c["plain_converged"] or c["censored_seeds"]:
        return None
    low, high = CONVERGENCE_FACTOR / ABOUT, CONVERGENCE_FACTOR * ABOUT
    return timing.ratio_p(ratio, "within", low, high, n=ratio["n"], allowance=c["allowance"][key])


def _ratio_words(ratio: dict) -> str:
    return "no ratio" if ratio.get("estimate") is None else timing.describe_ratio(ratio)


def mc_per_sample(m: dict) -> dict:
    """The CPU-time ratio of K dropout-on passes to one plain prediction, divided by K."""
    k = m["mc_timing_samples"]
    ratio = m["predict_timing"]["ratios"]["mc"]["cpu"]
    return {key: (None if v is None else v / k) for key, v in ratio.items()}


def nll_pairs(m: dict) -> tuple[list[float], list[float]]:
    """Per seed (finished dropout runs), test NLL of the plain prediction and of K_max samples."""
    k_max = str(max(m["mc_samples"]))
    scored = [r["test_scores"] for r in m["runs"] if r["test_scores"] is not None]
    return [t["plain"]["nll"] for t in scored], [t["mc"][k_max]["nll"] for t in scored]


def _timing_claim(claim_id: str, text: str, decided: dict, evidence: dict) -> Claim:
    return claim_from(decided, id=claim_id, text=text, evidence=evidence)


def judge(m: dict) -> list[Claim]:
    c = convergence(m)
    pairs = c["pairs"]
    epoch = m["epoch_timing"]["ratios"]["dropout"]
    inference = m["predict_timing"]["ratios"]["dropout"]
    k = m["mc_timing_samples"]
    per_sample = mc_per_sample(m)
    plain_nll, mc_nll = nll_pairs(m)
    nll = (
        stats.compare(
            plain_nll, mc_nll, claim="less", margin=NLL_MARGIN, paired=True, scale=1.0, unit=" nats"
        )
        if plain_nll
        else {
            "verdict": INCONCLUSIVE,
            "rule": "no finished dropout run: inconclusive",
            "says": None,
        }
    )
    return [
        Claim(
            id="dropout-cost/doubles-epochs-to-converge",
            text="Dropout roughly doubles the training needed to converge: the dropout net needs "
            "about twice the epochs the plain net needs to reach the plain net's best "
            "validation loss (same seed)",
            verdict=judge_convergence(c, "epoch_ratio"),
            rule=convergence_rule(c, "epoch_ratio"),
            source=CONVERGENCE_SOURCE,
            p_value=convergence_p(c, "epoch_ratio"),
            evidence={
                "ratio": _ratio_words(c["epoch_ratio"]),
                "ratio_per_seed": [p["epoch_ratio"] for p in pairs],
                "epochs_to_target_plain": [p["plain_epochs"] for p in pairs],
                "epochs_to_target_dropout": [
                    f">= {p['dropout_epochs']}" if p["censored"] else p["dropout_epochs"]
                    for p in pairs
                ],
                "censored_seeds": c["censored_seeds"],
                "plain_runs_converged_within_budget": c["plain_converged"],
                "budget_epochs": m["budget_epochs"],
            },
        ),
        Claim(
            id="dropout-cost/doubles-time-to-converge",
            text="Dropout roughly doubles the training time needed to converge: the dropout net "
            "needs about twice the CPU time the plain net needs to reach the plain net's best "
            "validation loss (same seed)",
            verdict=judge_convergence(c, "cpu_ratio"),
            source=CONVERGENCE_SOURCE,
            p_value=convergence_p(c, "cpu_ratio"),
            rule=convergence_rule(c, "cpu_ratio"),
            evidence={
                "ratio": _ratio_words(c["cpu_ratio"]),
                "epoch_ratio": _ratio_words(c["epoch_ratio"]),
                "one_epoch_cpu_ratio": timing.describe_ratio(epoch["cpu"]),
                "cpu_ratio_of_the_runs_themselves": _ratio_words(c["cpu_ratio_of_the_runs"]),
                "ratio_per_seed_of_the_runs": [p["cpu_ratio"] for p in pairs],
                "cpu_seconds_plain": [p.get("plain_cpu_seconds") for p in pairs],
                "cpu_seconds_dropout": [p.get("dropout_cpu_seconds") for p in pairs],
                "censored_seeds": c["censored_seeds"],
            },
        ),
        _timing_claim(
            "dropout-cost/slower-epochs",
            "Each training epoch costs more with dropout: more CPU time than the plain net's",
            timing.decide(
                epoch["cpu"],
                "at_least",
                SLOWER_EPOCH,
                source=SLOWER_EPOCH_SOURCE,
                n=timing.sample_size(m["epoch_timing"]),
                allowance=timing.timing_allowance(m["epoch_timing"]),
            ),
            {
                "cpu_ratio": timing.describe_ratio(epoch["cpu"]),
                "wall_ratio": timing.describe_ratio(epoch["wall"]),
                "rounds": m["epoch_timing"]["rounds"],
                "narrow": m["epoch_timing"]["converged"],
            },
        ),
        _timing_claim(
            "dropout-cost/inference-not-slower",
            "Dropout does not slow down inference: model.predict of the dropout net costs "
            f"the plain net's CPU time, within a factor {SAME_INFERENCE:g} either way",
            timing.decide(
                inference["cpu"],
                "within",
                1 / SAME_INFERENCE,
                SAME_INFERENCE,
                source=SAME_INFERENCE_SOURCE,
                n=timing.sample_size(m["predict_timing"]),
                allowance=timing.timing_allowance(m["predict_timing"]),
            ),
            {
                "cpu_ratio": timing.describe_ratio(inference["cpu"]),
                "wall_ratio": timing.describe_ratio(inference["wall"]),
                "rounds": m["predict_timing"]["rounds"],
                "images": m["timing_images"],
            },
        ),
        _timing_claim(
            "dropout-cost/mc-costs-k-predictions",
            f"MC Dropout with K samples costs K plain predictions or more: K = {k} dropout-on "
            f"passes cost at least {k} x one plain prediction",
            {
                **timing.decide(
                    per_sample,
                    "at_least",
                    MC_PER_SAMPLE,
                    source=MC_SOURCE,
                    n=timing.sample_size(m["predict_timing"]),
                    allowance=timing.timing_allowance(m["predict_timing"]),
                ),
                "rule": timing.ratio_rule(
                    "at_least",
                    MC_PER_SAMPLE,
                    allowance=timing.timing_allowance(m["predict_timing"]),
                )
                + f" (the ratio of {k} passes to one plain prediction, divided by {k})",
            },
            {
                "cpu_ratio_per_sample": timing.describe_ratio(per_sample),
                "cpu_ratio_of_k_passes": timing.describe_ratio(
                    m["predict_timing"]["ratios"]["mc"]["cpu"]
                ),
                "rounds": m["predict_timing"]["rounds"],
            },
        ),
        claim_from(
            nll,
            id="dropout-cost/mc-lowers-nll",
            text=f"Averaging {max(m['mc_samples'])} MC Dropout samples lowers the test NLL of "
            "the dropout net below its plain prediction (B = MC, A = plain)",
            evidence={
                "nll_plain": plain_nll,
                "nll_mc": mc_nll,
                "mc_minus_plain": nll["says"],
                "seed_plan": m.get("seed_plan"),  # absent in measurements made before the plan
            },
        ),
    ]


# ---- telling ----------------------------------------------------------------------------------

_HOW = {SUPPORTED: "support", REFUTED: "refute", INCONCLUSIVE: "cannot settle"}


def _mean_scores(m: dict, arm: str) -> dict[str, float] | None:
    """Mean over seeds of the test scores of the plain prediction or of K_max MC samples."""
    k_max = str(max(m["mc_samples"]))
    scored = [r["test_scores"] for r in m["runs"] if r["test_scores"] is not None]
    if not scored:
        return None
    rows = [t["plain"] if arm == "plain" else t["mc"][k_max] for t in scored]
    return {key: float(np.mean([r[key] for r in rows])) for key in ("accuracy", "nll", "ece")}


def tell(m: dict, claims: list[Claim]) -> str:
    v = {claim.id.split("/", 1)[1]: claim for claim in claims}
    c = convergence(m)
    epochs = "; ".join(
        f"{'>= ' if p['censored'] else ''}{p['dropout_epochs']} vs {p['plain_epochs']}"
        for p in c["pairs"]
    )
    parts = [
        f"Training: to reach the plain net's best validation loss, the dropout net (rate "
        f"{m['dropout_rate']:g}) needed {epochs or 'no'} epochs (dropout vs plain, per seed; "
        f"budget {m['budget_epochs']}), {_ratio_words(c['epoch_ratio'])} as many, and "
        f"{_ratio_words(c['cpu_ratio'])} the CPU time: the numbers "
        f"{_HOW[v['doubles-epochs-to-converge'].verdict]} 'roughly twice the epochs' and "
        f"{_HOW[v['doubles-time-to-converge'].verdict]} 'roughly twice the time'."
    ]
    if c["censored_seeds"]:
        parts.append(
            f"Seeds {', '.join(map(str, c['censored_seeds']))} never reached it within the "
            "budget: their ratios are lower bounds."
        )
    if not c["plain_converged"]:
        parts.append("A plain run used the whole budget, so its converged loss is not known.")
    acc = {
        arm: [r[arm]["test_accuracy"] for r in m["runs"] if r[arm]["test_accuracy"] is not None]
        for arm in ("plain", "dropout")
    }
    if acc["plain"] and acc["dropout"]:
        parts.append(
            f"Test accuracy at those points: {100 * np.mean(acc['dropout']):.1f}% with dropout, "
            f"{100 * np.mean(acc['plain']):.1f}% without."
        )
    parts.append(
        f"Per epoch, dropout cost {v['slower-epochs'].evidence['cpu_ratio']} the plain net's "
        f"CPU time ({v['slower-epochs'].verdict} as 'costlier epochs'). Inference: "
        f"{v['inference-not-slower'].evidence['cpu_ratio']} "
        f"({v['inference-not-slower'].verdict} as 'not slower'). MC Dropout: one dropout-on "
        f"pass cost {v['mc-costs-k-predictions'].evidence['cpu_ratio_per_sample']} a plain "
        f"prediction, so K samples cost that times K plain predictions "
        f"({v['mc-costs-k-predictions'].verdict} as 'K or more')."
    )
    plain, mc = _mean_scores(m, "plain"), _mean_scores(m, "mc")
    if plain and mc:
        parts.append(
            f"{max(m['mc_samples'])} samples gave a test NLL of {mc['nll']:.3f} vs "
            f"{plain['nll']:.3f} for the plain prediction ({v['mc-lowers-nll'].verdict} as "
            f"'lower', paired over seeds), ECE {mc['ece']:.3f} vs {plain['ece']:.3f}, accuracy "
            f"{100 * mc['accuracy']:.1f}% vs {100 * plain['accuracy']:.1f}%."
        )
    return " ".join(parts)


# ---- drawing ----------------------------------------------------------------------------------


def draw(m: dict, folder: Path) -> list[str]:
    fig, (ax_epoch, ax_cpu, ax_ratio) = subplots(1, 3, figsize=(16, 4.4), constrained_layout=True)
    for i, run in enumerate(m["runs"]):
        color = f"C{i}"
        for arm, style in (("plain", "-"), ("dropout", "--")):
            h = run[arm]["history"]
            label = f"seed {run['seed']}, {arm}"
            loss = [r["val_loss"] for r in h]
            ax_epoch.plot([r["epoch"] for r in h], loss, style, color=color, label=label)
            cpu = [training_cpu(h, e) for e in range(1, len(h) + 1)]
            ax_cpu.plot(cpu, loss, style, color=color, label=label)
        if run["target_val_loss"] is not None:
            for ax in (ax_epoch, ax_cpu):
                ax.axhline(run["target_val_loss"], color=color, linestyle=":", linewidth=1)
    ax_epoch.set_xlabel("epoch")
    ax_cpu.set_xlabel("process CPU seconds of training (epoch 1 counted at the median epoch)")
    for ax in (ax_epoch, ax_cpu):
        ax.set_ylabel("validation loss (dotted: target)")
        ax.grid(alpha=0.3)
    ax_epoch.legend(fontsize=7)
    c = convergence(m)
    roughly = (CONVERGENCE_FACTOR / ABOUT, CONVERGENCE_FACTOR * ABOUT)
    rows = [  # name, ratio, the interval that supports the claim
        ("epochs to target", c["epoch_ratio"], roughly),
        ("CPU time to target", c["cpu_ratio"], roughly),
        ("one epoch", m["epoch_timing"]["ratios"]["dropout"]["cpu"], (SLOWER_EPOCH, 100.0)),
        (
            "predict",
            m["predict_timing"]["ratios"]["dropout"]["cpu"],
            (1 / SAME_INFERENCE, SAME_INFERENCE),
        ),
        ("one MC pass", mc_per_sample(m), (MC_PER_SAMPLE, 100.0)),
    ]
    for y, (_, ratio, (low, high)) in enumerate(rows):
        ax_ratio.barh([y], [high - low], left=[low], height=0.5, color="C2", alpha=0.2)
        if ratio.get("estimate") is None:
            continue
        est = ratio["estimate"]
        lo = est if ratio["ci95_low"] is None else ratio["ci95_low"]
        hi = est if ratio["ci95_high"] is None else ratio["ci95_high"]
        ax_ratio.errorbar([est], [y], xerr=[[est - lo], [hi - est]], fmt="o", color="C0", capsize=4)
    ax_ratio.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax_ratio.set_xscale("log")
    ax_ratio.set_xlim(0.5, 8.0)
    ticks = (0.5, 1 / ABOUT, 1.0, ABOUT, 2.0, 2 * ABOUT, 4.0, 8.0)
    ax_ratio.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
    ax_ratio.minorticks_off()
    ax_ratio.axvline(1.0, color="grey", linewidth=1)
    ax_ratio.set_xlabel("dropout / plain with 95% interval; green: where the claim holds")
    ax_ratio.grid(alpha=0.3, axis="x")
    save_figure(fig, folder / "dropout_cost.png")
    return ["dropout_cost.png"]


# ---- the answer sets' further statements (docs/statements.md) ----------------------------------

# "Negligible" (answer 001) gives no number. dnnlab reads it as: no larger than what the
# machine's own load moves these ratios (the load allowance, measured by the load test), a cost
# that the noise of the machine hides; a slowdown beyond it is not negligible.
NEGLIGIBLE_SOURCE = (
    '001_5d9a0292ed7b7506.txt: "Dropout can slightly slow down the training process [...] '
    'However, the impact on training speed is generally negligible"; no number is stated: '
    "dnnlab reads negligible as within the load allowance of 1 (what a busy machine moves "
    "these ratios by, docs/verdicts.md), judged on the interval itself"
)
SPEEDS_UP_SOURCE = (
    '003_e0e88ed27c9ad342.txt: "It is more likely to speed up training because fewer neurons '
    'are being calculated" (speeds up: a CPU-time ratio at most 1)'
)


def statement_claims(m: dict) -> list[Claim]:
    """Dropout "speeds up training" (003, the student) and its slowdown is "negligible" (001)."""
    epoch = m["epoch_timing"]["ratios"]["dropout"]
    allowance = timing.timing_allowance(m["epoch_timing"])
    n = timing.sample_size(m["epoch_timing"])
    evidence = {
        "cpu_ratio": timing.describe_ratio(epoch["cpu"]),
        "wall_ratio": timing.describe_ratio(epoch["wall"]),
        "rounds": m["epoch_timing"]["rounds"],
        "processes": m["epoch_timing"].get("processes", 1),
    }
    band = (1 / (1 + allowance), 1 + allowance)
    return [
        claim_from(
            timing.decide(
                epoch["cpu"], "at_most", 1.0, source=SPEEDS_UP_SOURCE, n=n, allowance=allowance
            ),
            id="dropout-cost/dropout-speeds-up-epochs",
            text='Dropout speeds up training "because fewer neurons are being calculated" '
            "(answer 003): a training epoch of the dropout net costs at most the plain net's "
            "CPU time",
            evidence=evidence,
        ),
        claim_from(
            timing.decide(
                epoch["cpu"], "within", *band, source=NEGLIGIBLE_SOURCE, n=n, allowance=0.0
            ),
            id="dropout-cost/slowdown-negligible",
            text='Dropout\'s impact on training speed is "generally negligible" (answer 001; '
            f"read as: an epoch's CPU time within a factor {1 + allowance:g} of the plain net's, "
            "the load allowance, since the answer states no number)",
            evidence=evidence,
        ),
    ]


def step_flops(config: ModelConfig, batch: int, features: int = 3072) -> float:
    """Floating-point operations of one training step's gradient, as XLA counts them."""
    import jax
    import jax.numpy as jnp

    keras.utils.set_random_seed(0)
    model = build_model(config, (features,))
    x = jnp.zeros((batch, features), dtype=jnp.float32)
    y = jnp.zeros((batch,), dtype=jnp.int32)
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss(trainable, fixed, x, y):
        probabilities, _ = model.stateless_call(trainable, fixed, x, training=True)
        return keras.losses.sparse_categorical_crossentropy(y, probabilities).mean()

    cost = jax.jit(jax.grad(loss)).lower(trainable, fixed, x, y).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def facts(m: dict) -> list[Fact]:
    """Dropout computes every neuron, in one pass; ``model.predict`` never samples dropout."""
    settings = Settings()
    plain, dropout = settings.model, settings.dropout_model()
    flops = {
        "plain": step_flops(plain, settings.train.batch_size),
        "dropout": step_flops(dropout, settings.train.batch_size),
    }
    ratio = flops["dropout"] / flops["plain"]
    keras.utils.set_random_seed(0)
    model = build_model(dropout, (3072,))
    x = np.random.default_rng(0).normal(size=(64, 3072)).astype("float32")
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    sampled = keras.ops.convert_to_numpy(model(x, training=True))
    same = bool(np.array_equal(first, second))
    differs = bool(not np.allclose(first, sampled))
    return [
        Fact(
            id="dropout-cost/one-pass-per-step",
            text="A dropout training step computes every neuron, in one forward and one "
            "backward pass: its floating-point operations are at least the plain step's (no "
            "neurons skipped) and under twice them (no extra passes)",
            why="a dropout layer multiplies activations by a mask; every unit is still computed "
            "in the same forward and backward pass",
            check=f"XLA's flop count of one training step's gradient (batch "
            f"{settings.train.batch_size}) of the question's {plain.depth} x {plain.width} net, "
            f"plain and with dropout {settings.dropout_rate:g}",
            evidence={**flops, "ratio": ratio},
            holds=bool(1.0 <= ratio < 2.0),
        ),
        Fact(
            id="dropout-cost/predict-never-samples-dropout",
            text="model.predict never samples dropout: calling it again gives the same "
            "numbers, so MC Dropout through model.predict (answer 001's code) averages copies "
            "of one plain prediction",
            why="Keras calls layers with training=False in predict, and Dropout is the identity "
            "then",
            check="the question's dropout net, untrained: predict twice on 64 random images, "
            "and once called with training=True",
            evidence={"predict_twice_identical": same, "training_call_differs": differs},
            holds=same and differs,
        ),
    ]


def judge_all(m: dict) -> list[Claim]:
    """:func:`judge`, then the answer sets' further statements."""
    return judge(m) + statement_claims(m)


QUESTION = Question(
    id="dropout-cost",
    question="Does dropout slow down training? Does it slow down inference (i.e., making "
    "predictions on new instances)? What about MC Dropout?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 10 x 100 ELU net with and without dropout 0.1 after every hidden layer, "
    "Nadam 5e-4, batch 32, up to 30 epochs (patience 5); a 3-seed pilot, then up to 8 seeds for "
    "80% power at the NLL margin; NLL on the test set",
    measure=measure,
    judge=judge_all,
    tell=tell,
    draw=draw,
    settings=Settings(),
    facts=facts,
    retime=retime,
    timing_settings=("epoch_rounds", "predict_rounds", "timing_processes", "mc_timing_samples"),
)
