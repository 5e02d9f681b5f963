"""The exercise 8 section of the report: judge, tell and draw from the stored runs only.

Which runs make the study: those named in ``out/study.json`` (the plan
:func:`~dnnlab.experiments.exercise8.write_plan` writes); without a plan, for
each variant the largest group of runs sharing one config apart from the seed.
Runs of other configs in the same folder (another learning rate, ``--epochs``,
``--activation swish``) are listed apart, never averaged in; diverged runs are
listed apart too.

Claims are judged on the test set (each run's evaluated weights, touched once)
with paired tests over seeds, since the same seed gives every variant the same
data order; the validation accuracy is shown for comparison with the book only.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any

from dnnlab import stats
from dnnlab.experiments.exercise8 import STUDY, VARIANTS, Variant, search_records
from dnnlab.plots import compare_curves, layer_stats
from dnnlab.report import Block, Figure, Heading, Para, Table
from dnnlab.runs import StoredRun, list_runs
from dnnlab.timing import describe_ratio, judge_ratio, ratio_rule, timing_allowance
from dnnlab.train import first_reaching

# One line of the report's answers at a glance: part, claim, verdict (None: a number only),
# the number behind it, and the anchor of the section that shows it.
Glance = tuple[str, str, str | None, str, str]

EPOCH_MARGIN = 2.0  # epochs: differences in convergence smaller than this do not matter
BN_SLOWER = 1.05  # "BN costs time per epoch": at least 5% more CPU time per epoch
# Self-normalization: every hidden layer's activation mean within +-0.25 and std within
# [0.75, 1.33] (a factor 4/3 of the fixed point 0, 1; finite width and data move a layer by
# about 0.1 at initialization).
SELF_NORMAL_MEAN, SELF_NORMAL_STD = 0.25, (0.75, 4 / 3)


def config_key(run: StoredRun) -> str:
    """The hash of a run's config without its seed: runs sharing it are seeds of one config."""
    d = run.config.to_dict()
    d.pop("seed")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def _plan(out: Path) -> dict | None:
    try:
        plan = json.loads((out / "study.json").read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and isinstance(plan.get("runs"), dict) else None


def select_runs(out: Path) -> dict[str, Any]:
    """The study's runs by trained config, the other configs' runs, and the diverged runs."""
    usable = [r for r in list_runs(out) if r.summary.get("status") in ("finished", "diverged")]
    diverged = [r for r in usable if r.summary["status"] == "diverged"]
    finished = [r for r in usable if r.summary["status"] == "finished"]
    groups: dict[tuple[str, str], list[StoredRun]] = {}
    for r in finished:
        groups.setdefault((r.config.variant, config_key(r)), []).append(r)
    plan = _plan(out)
    study: dict[str, list[StoredRun]] = {}
    if plan is not None:
        wanted = {rid for ids in plan["runs"].values() for rid in ids}
        for r in finished:
            if r.config.run_id in wanted:
                study.setdefault(r.config.variant, []).append(r)
    else:
        for (name, _), runs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            study.setdefault(name, runs)
    chosen = {r.config.run_id for runs in study.values() for r in runs}
    others = {
        key: runs
        for key, runs in groups.items()
        if not any(r.config.run_id in chosen for r in runs)
    }
    order = [v for v in dict.fromkeys(VARIANTS[n].trains for n in STUDY)]
    study = {
        name: sorted(study[name], key=lambda r: r.config.seed)
        for name in [*order, *sorted(set(study) - set(order))]
        if name in study
    }
    return {
        "study": study,
        "others": others,
        "diverged": diverged,
        "planned": plan is not None,
        "plan": plan,
    }


def _values(runs: list[StoredRun], key: str) -> list[float]:
    return [r.summary[key] for r in runs if r.summary.get(key) is not None]


def _val(run: StoredRun) -> float | None:
    """The validation accuracy of the weights the run evaluated (older runs: the best epoch's)."""
    return run.summary.get("val_accuracy", run.summary.get("best_val_accuracy"))


def _mc(run: StoredRun, split: str, kind: str, metric: str) -> float | None:
    scores = run.summary.get("mc_dropout", {}).get(split)
    return None if scores is None else scores[kind][metric]


def variant_values(variant: Variant, runs: list[StoredRun]) -> dict[int, dict[str, float]]:
    """Per seed, the numbers a variant is judged on: test and validation accuracy."""
    out: dict[int, dict[str, float]] = {}
    for r in runs:
        if variant.after:  # a way of predicting: the MC prediction of the trained model
            test, val = _mc(r, "test", "mc", "accuracy"), r.summary.get("mc_accuracy")
        else:
            test, val = r.summary.get("test_accuracy"), _val(r)
        if test is not None:
            out[r.config.seed] = {"test": test, "val": val}
    return out


def _pct(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    d = stats.describe(values)
    if d["std"] is None:
        return f"{100 * d['mean']:.{digits}f}"
    return f"{100 * d['mean']:.{digits}f} ± {100 * d['std']:.{digits}f}"


def _num(values: list[float], digits: int = 0) -> str:
    if not values:
        return "–"
    d = stats.describe(values)
    if d["std"] is None:
        return f"{d['mean']:.{digits}f}"
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"


def baseline_target(study: dict[str, list[StoredRun]]) -> float | None:
    """The validation loss every baseline seed reaches: the largest of their best losses.

    Time to accuracy is the time until a run's validation loss first gets down
    to it; with this target every baseline seed gets there, so the baseline's
    own time is defined and other variants race the same bar.
    """
    losses = _values(study.get("baseline", []), "best_val_loss")
    return max(losses) if losses else None


def _reach(runs: list[StoredRun], target: float | None, field: str) -> list[float | None]:
    if target is None:
        return []
    return [first_reaching(r.history, target, field=field) for r in runs]


RULE_WORDS = {
    "book": "book",
    "range-test-peak": "range test",
    "search": "searched",
    "search-around-peak": "searched around the range test's peak",
}


def rate_cell(rates: list[float], entry: dict[str, Any] | None) -> str:
    """The rates a variant's runs trained with, how they were set, and the book's beside them."""
    shown = ", ".join(f"{lr:.3g}" for lr in rates)
    if entry is None:
        return shown
    how = RULE_WORDS.get(entry["rule"], entry["rule"])
    if entry["rule"] == "book":
        return f"{shown} ({how})"
    return f"{shown} ({how}; book {entry['book']:.3g})"


def results_table(
    study: dict[str, list[StoredRun]],
    target: float | None,
    rates: dict[str, dict[str, Any]] | None = None,
) -> Table:
    """One row per variant; ``rates`` (the plan's) says how each learning rate was set."""
    rows = []
    for name in STUDY:
        variant = VARIANTS[name]
        runs = study.get(variant.trains, [])
        values = variant_values(variant, runs)
        if not values:
            continue
        lrs = sorted({r.config.train.learning_rate for r in runs})
        trained = not variant.after
        times = _reach(runs, target, "elapsed") if trained else []
        reached = [t for t in times if t is not None]
        reach = "–"
        if times:
            reach = f"{statistics.median(reached):.0f} s" if reached else "never"
            if reached and len(reached) < len(times):
                reach += f" ({len(reached)}/{len(times)} seeds)"

        def col(key: str, digits: int = 0, runs=runs, trained=trained) -> str:
            return _num(_values(runs, key), digits) if trained else "–"

        rows.append(
            (
                name,
                variant.step,
                str(len(values)),
                rate_cell(lrs, (rates or {}).get(variant.trains))
                if trained
                else f"({variant.trains} runs, {runs[0].summary.get('mc_samples')} samples)",
                _pct([v["test"] for v in values.values()]),
                _pct([v["val"] for v in values.values() if v["val"] is not None]),
                "{} / {}".format(*variant.book),
                col("best_epoch"),
                col("epochs_run"),
                col("seconds_per_epoch", 2),
                reach if trained else "–",
            )
        )
    return Table(
        (
            "variant",
            "what it changes",
            "seeds",
            "learning rate",
            "test acc % (mean ± std)",
            "val acc %",
            "book val acc % (2nd / 3rd ed.)",
            "best epoch",
            "epochs run",
            "s / epoch (wall)",
            "time to the baseline's val loss",
        ),
        tuple(rows),
    )


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[list[float], list[float]]:
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def _test_by_seed(name: str, study: dict[str, list[StoredRun]]) -> dict[int, float]:
    variant = VARIANTS[name]
    return {s: v["test"] for s, v in variant_values(variant, study.get(variant.trains, [])).items()}


def step_claims(study: dict[str, list[StoredRun]]) -> list[dict[str, Any]]:
    """Each variant against the one it changes, and against the baseline, on test accuracy."""
    test = {name: _test_by_seed(name, study) for name in VARIANTS}
    claims = []
    for name in STUDY:
        variant = VARIANTS[name]
        against = [c for c in dict.fromkeys((variant.changes, "baseline")) if c and c != name]
        for other in against:
            a, b = _paired(test[other], test[name])
            if not a:
                continue
            result = stats.compare(a, b, claim="greater", margin=stats.ACCURACY_MARGIN, paired=True)
            claims.append(
                {
                    "id": f"{name}/beats-{other}",
                    "text": f"{name} gives a better test accuracy than {other}",
                    "step": other == variant.changes,
                    **result,
                }
            )
    return claims


def _claims_table(claims: list[dict[str, Any]]) -> Table:
    return Table(
        ("claim (B = first, A = second)", "B − A on test accuracy", "verdict"),
        tuple((c["text"], c["says"], c["verdict"]) for c in claims),
    )


PARTS = {
    "batchnorm": "(c) Batch Normalization",
    "selu": "(d) SELU",
    "alpha-dropout": "(e) alpha dropout",
    "mc-dropout": "(e) MC Dropout",
    "one-cycle": "(f) 1cycle",
}


def comparison_blocks(study: dict[str, list[StoredRun]], glance: list[Glance]) -> list[Block]:
    claims = step_claims(study)
    if not claims:
        return []
    for c in claims:
        if c["step"]:
            name = c["id"].split("/")[0]
            glance.append((PARTS.get(name, name), c["text"], c["verdict"], c["says"], "e8-steps"))
    steps = [c for c in claims if c["step"]]
    baseline = [c for c in claims if not c["step"]]
    return [
        Heading("Step by step: does each change help?", 3, "e8-steps"),
        Para(
            "Each variant against the variant it changes (its one step), then against the "
            "baseline, on test accuracy: one value per seed, paired by seed (the same seed gives "
            f"both the same data order). Rule: {steps[0]['rule'] if steps else claims[0]['rule']}."
        ),
        *([_claims_table(steps)] if steps else []),
        *([Para("Against the baseline:"), _claims_table(baseline)] if baseline else []),
    ]


def _judged(claim: str, test: dict[str, Any]) -> str:
    return f"{claim}: **{test['verdict']}** ({test['says']})"


def batchnorm_blocks(
    study: dict[str, list[StoredRun]], out: Path, glance: list[Glance]
) -> list[Block]:
    base, bn = study.get("baseline"), study.get("batchnorm")
    if not base or not bn:
        return []
    target = baseline_target(study)
    by_seed = {r.config.seed: r for r in base}
    pairs = [(by_seed[r.config.seed], r) for r in bn if r.config.seed in by_seed]
    epochs = stats.compare(
        [a.summary["best_epoch"] for a, _ in pairs],
        [b.summary["best_epoch"] for _, b in pairs],
        claim="less",
        margin=EPOCH_MARGIN,
        paired=True,
        scale=1.0,
        unit=" epochs",
        digits=1,
    )
    base_t, bn_t = _reach(base, target, "elapsed"), _reach(bn, target, "elapsed")
    reached = [t for t in bn_t if t is not None]
    quality = stats.compare(
        *_paired(_test_by_seed("baseline", study), _test_by_seed("batchnorm", study)),
        claim="greater",
        margin=stats.ACCURACY_MARGIN,
        paired=True,
    )
    glance.append(
        (
            PARTS["batchnorm"],
            "BN's best epoch comes earlier",
            epochs["verdict"],
            epochs["says"],
            "e8-batchnorm",
        )
    )
    med_bn = statistics.median(b.summary["best_epoch"] for _, b in pairs)
    med_base = statistics.median(a.summary["best_epoch"] for a, _ in pairs)
    blocks: list[Block] = [
        Heading("Exercise 8 (c): what Batch Normalization changes", 3, "e8-batchnorm"),
        Para(
            _judged("Convergence: BN's best epoch comes earlier", epochs)
            + f" — median best epoch {med_bn:.0f} with BN vs {med_base:.0f} without. "
            f"Rule: {epochs['rule']}. BN reaches the baseline's validation loss "
            f"({target:.3f}, the best of its worst seed) "
            + (
                f"after {statistics.median(reached):.0f} s of training (median, wall time), vs "
                f"{statistics.median([t for t in base_t if t is not None]):.0f} s for the "
                "baseline itself."
                if reached
                else "in none of its runs."
            )
        ),
        Para(_judged("Quality: BN gives a better test accuracy", quality) + "."),
    ]
    path = out / "timing" / "batchnorm.json"
    if path.exists():
        timing = json.loads(path.read_text())
        cpu, wall = timing["ratios"]["batchnorm"]["cpu"], timing["ratios"]["batchnorm"]["wall"]
        allowance = timing_allowance(timing)
        verdict = judge_ratio(cpu, "at_least", BN_SLOWER, allowance=allowance)
        glance.append(
            (
                PARTS["batchnorm"],
                f"BN costs at least {100 * (BN_SLOWER - 1):.0f}% more time per epoch",
                verdict,
                f"CPU-time ratio {describe_ratio(cpu)}",
                "e8-batchnorm",
            )
        )
        blocks.append(
            Para(
                f"Cost: BN costs at least {100 * (BN_SLOWER - 1):.0f}% more time per epoch: "
                f"**{verdict}**. One training epoch of fresh baseline and BN nets, "
                f"{timing['rounds']} interleaved rounds: CPU-time ratio {describe_ratio(cpu)}, "
                f"wall-time ratio {describe_ratio(wall)}. "
                f"Rule: {ratio_rule('at_least', BN_SLOWER, allowance=allowance)}."
            )
        )
    return blocks


def _within(rows: list[dict]) -> bool:
    lo, hi = SELF_NORMAL_STD
    return all(abs(r["mean"]) <= SELF_NORMAL_MEAN and lo <= r["std"] <= hi for r in rows)


def self_normal_verdict(stats_by_seed: list[list[dict]]) -> str:
    """supported if every seed's every layer is within the band, refuted if no seed's is."""
    inside = [_within(rows) for rows in stats_by_seed]
    if not inside:
        return stats.INCONCLUSIVE
    if all(inside):
        return stats.SUPPORTED
    return stats.REFUTED if not any(inside) else stats.INCONCLUSIVE


SELF_NORMAL_RULE = (
    f"supported if, in every seed, every hidden layer's activation mean on 256 validation "
    f"images is within ±{SELF_NORMAL_MEAN} and its std within [{SELF_NORMAL_STD[0]}, "
    f"{SELF_NORMAL_STD[1]:.2f}]; refuted if in every seed some layer is outside; "
    "inconclusive if the seeds disagree"
)


def selu_blocks(study: dict[str, list[StoredRun]], out: Path, glance: list[Glance]) -> list[Block]:
    def load(runs: list[StoredRun]) -> list[dict]:
        return [
            json.loads((r.path / "layer_stats.json").read_text())
            for r in runs
            if (r.path / "layer_stats.json").exists()
        ]

    stats_of = {name: load(study.get(name, [])) for name in ("baseline", "selu")}
    if not stats_of["selu"]:
        return []
    rows = []
    for name, label in (("selu", "SELU net (LeCun, standardized)"), ("baseline", "control: ELU")):
        for when in ("start", "end"):
            per_seed = [s[when] for s in stats_of[name]]
            if not per_seed:
                continue
            means = [r["mean"] for rows_ in per_seed for r in rows_]
            stds = [r["std"] for rows_ in per_seed for r in rows_]
            moment = "at initialization" if when == "start" else "after training"
            verdict = self_normal_verdict(per_seed)
            rows.append(
                (
                    label,
                    moment,
                    verdict,
                    f"{min(means):.2f} to {max(means):.2f}",
                    f"{min(stds):.2f} to {max(stds):.2f}",
                )
            )
            if name == "selu":
                glance.append(
                    (
                        PARTS["selu"],
                        f"the SELU net self-normalizes {moment}",
                        verdict,
                        f"layer stds {min(stds):.2f} to {max(stds):.2f}",
                        "e8-selu",
                    )
                )
    figure = out / "figures" / "layer_stats.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    layer_stats({n: s[0] for n, s in stats_of.items() if s}, figure)
    return [
        Heading("Exercise 8 (d): does the SELU net self-normalize?", 3, "e8-selu"),
        Para(f"Claim: the net's hidden layers stay near mean 0, std 1. Rule: {SELF_NORMAL_RULE}."),
        Table(("net", "when", "self-normalized", "layer means", "layer stds"), tuple(rows)),
        Figure(
            figure,
            "Activation mean and std per hidden layer on 256 validation images, before and "
            "after training (first seed).",
        ),
    ]


def mc_blocks(study: dict[str, list[StoredRun]], glance: list[Glance]) -> list[Block]:
    runs = [r for r in study.get(VARIANTS["mc-dropout"].trains, []) if _mc(r, "test", "mc", "nll")]
    if not runs:
        return []
    rows, claims = [], []
    for metric, claim, scale, unit, digits in (
        ("accuracy", "greater", 100.0, " points", 1),
        ("nll", "less", 1.0, "", 3),
        ("ece", "less", 100.0, " points", 1),
    ):
        plain = [_mc(r, "test", "plain", metric) for r in runs]
        mc = [_mc(r, "test", "mc", metric) for r in runs]
        margin = {"accuracy": stats.ACCURACY_MARGIN, "nll": 0.01, "ece": 0.01}[metric]
        test = stats.compare(
            plain, mc, claim=claim, margin=margin, paired=True, scale=scale, unit=unit
        )
        better = "higher" if claim == "greater" else "lower"
        text = f"MC Dropout gives a {better} {metric.upper() if metric != 'accuracy' else metric}"
        if metric != "accuracy":  # accuracy is in the step-by-step lines already
            glance.append(
                (PARTS["mc-dropout"], text, test["verdict"], test["says"], "e8-mc-dropout")
            )
        rows.append(
            (
                text,
                f"{stats.describe(plain)['mean'] * scale:.{digits}f}",
                f"{stats.describe(mc)['mean'] * scale:.{digits}f}",
                test["says"],
                test["verdict"],
            )
        )
        claims.append(test)
    samples = runs[0].summary["mc_samples"]
    return [
        Heading("Exercise 8 (e): MC Dropout without retraining", 3, "e8-mc-dropout"),
        Para(
            "The trained alpha-dropout models, not retrained, predict the test set "
            f"{samples} times with dropout sampled; the probabilities are averaged. "
            "Plain and MC predictions of "
            "the same model are paired by seed. model.predict never samples dropout: Keras runs "
            "layers in inference mode there, so MC Dropout calls the dropout layers with "
            f"training=True while any BatchNormalization stays in inference mode. Rule: "
            f"{claims[0]['rule']} (for the 'lower' claims the mirror image: below 0; margins: "
            "1 point of accuracy or ECE, 0.01 nats of NLL)."
        ),
        Table(("claim", "plain (mean)", "MC (mean)", "MC − plain", "verdict"), tuple(rows)),
    ]


def one_cycle_blocks(study: dict[str, list[StoredRun]]) -> list[Block]:
    runs = study.get("one-cycle", [])
    if not runs or runs[0].summary.get("evaluated") != "final":
        return []
    final = [_val(r) for r in runs]
    best = [r.summary["best_val_accuracy"] for r in runs]
    epochs = [r.summary["best_epoch"] for r in runs]
    return [
        Heading("Exercise 8 (f): 1cycle, judged on its final weights", 3, "e8-one-cycle"),
        Para(
            f"1cycle anneals the rate to the last epoch, so its runs keep their final weights "
            f"(the book's 52.0 / 52.4 are final-epoch numbers): validation accuracy "
            f"{_pct(final)}%. The weights of the epoch with the lowest validation loss (epoch "
            f"{_num(epochs)}) would give {_pct(best)}%, shown for comparison only; the test set "
            "saw only the final weights."
        ),
    ]


LR_PART = "(b) learning rates"


def _outcome(trial: dict[str, Any]) -> str:
    if trial["state"] == "pruned":
        return f"pruned at epoch {trial['pruned_at']}"
    if trial["state"] == "diverged":
        return f"diverged in epoch {trial['epochs']}"
    return trial["state"]  # complete (early stopping or the last epoch), or still pending


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def trials_table(record: dict[str, Any], first: str) -> Table:
    """A search's candidates in order; ``first`` names what the first candidate is."""
    rows = []
    for t in record["trials"]:
        rate = f"{t['learning_rate']:.3g}"
        if t["candidate"] == record["chosen_candidate"]:
            rate = f"**{rate}** (chosen)"
        if t["candidate"] == 0:
            rate += f" ({first})"
        loss = t.get("best_val_loss")
        rows.append(
            (
                str(t["candidate"]),
                rate,
                _outcome(t),
                str(t.get("epochs", "–")),
                str(t.get("best_epoch") or "–"),
                "–" if loss is None else f"{loss:.4f}",
                "–" if t.get("seconds") is None else f"{t['seconds']:.0f}",
            )
        )
    return Table(
        (
            "candidate",
            "learning rate",
            "outcome",
            "epochs trained",
            "best epoch",
            "best val loss",
            "seconds",
        ),
        tuple(rows),
    )


def chosen_trial(record: dict[str, Any]) -> dict[str, Any] | None:
    """The search's chosen candidate (None if none completed)."""
    return next((t for t in record["trials"] if t["candidate"] == record["chosen_candidate"]), None)


def search_cost(
    records: dict[str, dict[str, Any]], study: dict[str, list[StoredRun]]
) -> dict[str, Any]:
    """The searches' cost beside the study's runs of the same configs, in epochs and seconds.

    ``epochs`` / ``seconds``: the candidates' own training (waits at rungs excluded);
    ``lost_*``: attempts abandoned when a worker died (their seconds run until it was
    declared dead); ``chosen_epochs``: the chosen candidates', which the first-seed runs
    train again; ``ratio``: ``epochs / run_epochs`` (None without runs).
    """
    runs = [r for name in records for r in study.get(name, [])]
    cost = {
        key: sum(r["cost"][key] for r in records.values())
        for key in ("epochs", "seconds", "lost_epochs", "lost_seconds")
    }
    chosen = [chosen_trial(r) for r in records.values()]
    run_epochs = sum(r.summary.get("epochs_run") or 0 for r in runs)
    return {
        **cost,
        "chosen_epochs": sum(t["epochs"] for t in chosen if t is not None),
        "runs": len(runs),
        "run_epochs": run_epochs,
        "run_seconds": sum(r.summary.get("total_seconds") or 0.0 for r in runs),
        "ratio": cost["epochs"] / run_epochs if run_epochs else None,
    }


def search_blocks(
    out: Path,
    study: dict[str, list[StoredRun]],
    rates: dict[str, dict[str, Any]],
    glance: list[Glance],
) -> list[Block]:
    """Each variant's learning-rate search: its candidates, the choice beside the book's, cost."""
    records = search_records(out, rates)
    if not records:
        return []
    total = search_cost(records, study)
    ratio = "–" if total["ratio"] is None else f"{total['ratio']:.2f}×"
    cost = (
        f"The searches trained {total['epochs']} epochs in {_minutes(total['seconds'])} "
        f"(waits at rungs excluded); the study's {total['runs']} runs of the same variants "
        f"trained {total['run_epochs']} epochs in {_minutes(total['run_seconds'])}: the "
        f"searches cost {ratio} the study's epochs (minutes depend on how busy the machine "
        "was; epochs do not)."
    )
    if total["lost_epochs"]:
        cost += (
            f" Not counted: {total['lost_epochs']} epochs of attempts abandoned when a worker died "
            "or gave a candidate back (per variant below)."
        )
    blocks: list[Block] = [
        Heading("Exercise 8 (b): each variant's learning rate, searched", 3, "e8-lr-search"),
        Para(
            "The exercise says to search for the right learning rate each time the model "
            "changes. Each variant's search trains candidates like the runs themselves (same "
            "config and epochs, early stopping on validation loss), on the first seed, and "
            "never touches the test set; bad candidates are pruned at the rungs (successive "
            "halving: at each rung, only the best third of the candidates so far go on) and "
            "the rate chosen is the one with the lowest validation loss among completed "
            "candidates. The book's rate is the first candidate (1cycle: the LR range test's "
            "peak, with full cycles only). " + cost
        ),
    ]
    words = []
    for trains, record in records.items():
        entry = rates[trains]
        chosen, book = record["chosen"], entry["book"]
        first = "the book's" if entry["rule"] == "search" else "range-test peak"
        if chosen is None:
            verdict = "no candidate completed: no rate chosen"
        elif chosen == book:
            verdict = "the book's rate"
        else:
            verdict = f"{chosen / book:.3g}× the book's {book:.3g}"
        words.append(f"{trains} {chosen:.3g}" if chosen is not None else f"{trains} –")
        c = record["cost"]
        text = (
            f"Chosen: **{chosen:.3g}** ({verdict}); book: {book:.3g}. "
            if chosen is not None
            else f"No rate chosen; book: {book:.3g}. "
        )
        text += (
            f"{len(record['trials'])} candidates of up to {record['max_epochs']} epochs, "
            + (
                f"rungs at epochs {', '.join(map(str, record['rungs']))}"
                if record["rungs"]
                else "no rungs (every candidate trained in full)"
            )
            + "; cost "
            f"{c['epochs']} epochs, {_minutes(c['seconds'])}"
        )
        if c["lost_epochs"]:
            text += (
                f", plus {c['lost_epochs']} epochs of attempts abandoned when a worker died "
                f"or gave a candidate back ({_minutes(c['lost_seconds'])} from their start "
                "until they were declared dead)"
            )
        blocks += [
            Heading(f"{trains}: learning rate {verdict}", 4, f"e8-lr-{trains}"),
            Para(text + "."),
            trials_table(record, first),
        ]
    glance.append(
        (
            LR_PART,
            "each variant's learning rate, searched (the book's in brackets)",
            None,
            "; ".join(f"{w} ({rates[t]['book']:.3g})" for w, t in zip(words, records, strict=True))
            + f"; cost {ratio} the study's epochs",
            "e8-lr-search",
        )
    )
    return blocks


def figures(study: dict[str, list[StoredRun]], out: Path) -> list[Block]:
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    histories = {v: [r.history for r in runs] for v, runs in study.items()}
    blocks: list[Block] = [Heading("Learning curves", 3, "e8-curves")]
    for x, name, caption in (
        ("epoch", "curves_epoch.png", "Validation loss and accuracy per epoch"),
        ("elapsed", "curves_time.png", "Validation loss and accuracy vs wall time"),
    ):
        compare_curves(histories, fig_dir / name, x=x)
        blocks.append(Figure(fig_dir / name, f"{caption}; mean over seeds, band = min–max."))
    for png in sorted((out / "lr-find").glob("*.png")):
        blocks.append(Figure(png, f"LR range test: {png.stem}"))
    return blocks


def _describe_config(runs: list[StoredRun]) -> str:
    r = runs[0].config
    t = r.train
    return (
        f"{r.model.depth} x {r.model.width} {r.model.activation}, lr {t.learning_rate:.3g}, "
        f"{t.optimizer}, batch {t.batch_size}, up to {t.epochs} epochs, patience {t.patience}"
        + (f", train size {r.data.train_size}" if r.data.train_size else "")
    )


def apart_blocks(selected: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    if selected["others"]:
        rows = tuple(
            (
                name,
                key,
                _describe_config(runs),
                str(len(runs)),
                _pct(_values(runs, "test_accuracy")),
            )
            for (name, key), runs in sorted(selected["others"].items())
        )
        blocks += [
            Heading("Other configurations in this folder (not part of the study)", 3, "e8-others"),
            Para("Runs whose config differs from the study's; shown apart, never averaged in."),
            Table(("variant", "config", "settings", "seeds", "test acc %"), rows),
        ]
    if selected["diverged"]:
        blocks += [
            Heading("Diverged runs", 3, "e8-diverged"),
            Para("A non-finite loss stopped these runs; they are left out of every mean."),
            Table(
                ("run", "diverged in epoch"),
                tuple(
                    (r.config.run_id, str(r.summary.get("diverged_epoch")))
                    for r in selected["diverged"]
                ),
            ),
        ]
    return blocks


def section(out: Path) -> tuple[list[Glance], list[Block]]:
    """The report's exercise 8 section and its answers at a glance, from ``out`` only."""
    selected = select_runs(out)
    study = selected["study"]
    target = baseline_target(study)
    head: list[Block] = [
        Heading("Exercise 8 on CIFAR-10 (Géron, chapter 11)", 2, "exercise-8"),
        Para(
            "Test accuracy is measured once per run on the weights the run keeps: the epoch "
            "with the lowest validation loss (early stopping with the best weights restored), "
            "or, for 1cycle, the final weights. Claims are judged on it; validation accuracy "
            "is shown for comparison with the book. Validation = first 5,000 training images, "
            "training = the other 45,000. Time to the baseline's val loss: wall time of "
            "training until the validation loss first reaches the best loss of the baseline's "
            "worst seed (median over the seeds that reach it)."
            + ("" if selected["planned"] else " No study.json: each variant's largest group.")
        ),
    ]
    if not study:
        return [], [*head, Para("No finished runs yet."), *apart_blocks(selected)]
    glance: list[Glance] = []
    base = variant_values(VARIANTS["baseline"], study.get("baseline", []))
    if base:
        glance.append(
            (
                "(a–b) baseline",
                "the book's deep ELU net, test accuracy (validation; book 2nd / 3rd ed.)",
                None,
                f"{_pct([v['test'] for v in base.values()])}% "
                f"({_pct([v['val'] for v in base.values()])}%; 47.6 / 46.8)",
                "exercise-8",
            )
        )
    rates = (selected["plan"] or {}).get("lr", {})
    body = [
        results_table(study, target, rates),
        *comparison_blocks(study, glance),
        *batchnorm_blocks(study, out, glance),
        *selu_blocks(study, out, glance),
        *mc_blocks(study, glance),
        *one_cycle_blocks(study),
        *figures(study, out),
    ]
    body[1:1] = search_blocks(out, study, rates, glance)
    order = list(dict.fromkeys(["(a–b) baseline", LR_PART, *PARTS.values()]))
    glance.sort(key=lambda g: order.index(g[0]) if g[0] in order else len(order))
    return glance, [*head, *body, *apart_blocks(selected)]
