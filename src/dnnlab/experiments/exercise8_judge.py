"""Exercise 8, judged: stored runs -> claims (supported / refuted / inconclusive), result.json.

The study's measurements are its stored runs (config, per-epoch history,
summary, layer statistics), BN's timing file and MC Dropout's scores. This
module reads them and applies each claim's rule, driven by the
:class:`~dnnlab.experiments.exercise8.Variant` records only (what a step
changes, which control isolates it, what the book compares it with, whether
the exercise asks about its speed), never by a variant's name. It writes
``out/exercise8/result.json``: every claim with its id, text, rule, verdict,
sentence and numbers, the checked facts apart (what holds by construction,
such as the settings two compared configs differ in), and the per-variant
numbers the report's tables show. ``dnnlab exercise8 --rejudge`` reruns it in
seconds without training; the report only tells and draws from it.

Which runs make the study: those named in ``out/study.json``; without a plan,
for each config the largest group of runs sharing one config apart from the
seed. Runs of other configs in the same folder are listed apart, never
averaged in; diverged runs are listed apart too. Claims about accuracy are
judged on the test set (each run's evaluated weights, touched once) with paired
tests over seeds, since the same seed gives every variant the same data order.

"Converges faster" is measured as Géron measures it: the epochs (and the
training time, CPU and wall) a run needs to first reach the best validation
loss of the run it is compared with, seed by seed (:func:`reach`). A run that
never gets there is censored: it is known only to need more than it trained.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path
from typing import Any

from dnnlab import stats
from dnnlab.experiments.exercise8 import STUDY, VARIANTS, Variant
from dnnlab.runs import StoredRun, atomic_write_json, list_runs
from dnnlab.timing import describe_ratio, judge_ratio, ratio_rule, timing_allowance
from dnnlab.train import first_reaching

FORMAT = 1
RESULT = Path("exercise8") / "result.json"

# "Converges faster": fewer epochs to the reference's best validation loss. Géron: "The
# previous model took 27 epochs to reach the lowest validation loss, while the new model
# achieved that same loss in just 5 epochs". Differences within 2 epochs do not matter; for
# time, within the reference's own time of 2 epochs (its median per epoch, CPU or wall).
EPOCH_MARGIN = 2.0
BN_SLOWER = 1.05  # "BN costs time per epoch": at least 5% more CPU time per epoch
# Self-normalization: every hidden layer's activation mean within +-0.25 and std within
# [0.75, 1.33] (a factor 4/3 of the fixed point 0, 1; finite width and data move a layer by
# about 0.1 at initialization).
SELF_NORMAL_MEAN, SELF_NORMAL_STD = 0.25, (0.75, 4 / 3)
MC_MARGINS = {"accuracy": stats.ACCURACY_MARGIN, "nll": 0.01, "ece": 0.01}
# Settings every compared pair may differ in by design: the seed pairs, the rate is tuned.
NUISANCE = ("variant", "seed", "train.learning_rate")


# ---- which runs ---------------------------------------------------------------------------


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


# ---- numbers per seed ---------------------------------------------------------------------


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


def _runs(name: str, study: dict[str, list[StoredRun]]) -> list[StoredRun]:
    return study.get(VARIANTS[name].trains, [])


def _test(name: str, study: dict[str, list[StoredRun]]) -> dict[int, float]:
    values = variant_values(VARIANTS[name], _runs(name, study))
    return {s: v["test"] for s, v in values.items()}


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[list[int], list[float], list[float]]:
    seeds = sorted(set(a) & set(b))
    return seeds, [a[s] for s in seeds], [b[s] for s in seeds]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


# ---- checked facts: what two compared configs differ in -----------------------------------


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_difference(a: StoredRun, b: StoredRun) -> dict[str, list[Any]]:
    """The settings in which the configs of ``a`` and ``b`` differ: {field: [a's, b's]}.

    The seed, the variant's name and the learning rate (a nuisance parameter,
    tuned per variant) are left out: every compared pair differs in them by design.
    """
    fa, fb = _flat(a.config.to_dict()), _flat(b.config.to_dict())
    return {
        k: [fa.get(k), fb.get(k)]
        for k in sorted(set(fa) | set(fb))
        if k not in NUISANCE and fa.get(k) != fb.get(k)
    }


# ---- rules --------------------------------------------------------------------------------


def _claim(
    id: str, variant: Variant, text: str, kind: str, result: dict[str, Any], numbers: dict
) -> dict[str, Any]:
    return {
        "id": id,
        "part": variant.part,
        "text": text,
        "kind": kind,
        "verdict": result["verdict"],
        "rule": result["rule"],
        "says": result["says"],
        "numbers": numbers,
    }


KIND_WORDS = {
    "step": "the step against the variant it changes",
    "isolating": "the isolating comparison: the two differ in the step only",
    "book": "the book's comparison: it differs in more than the step",
    "control": "a control against the variant it changes",
}


def accuracy_claim(
    variant: Variant, other: str, kind: str, study: dict[str, list[StoredRun]]
) -> dict[str, Any] | None:
    """``variant`` gives a better test accuracy than ``other``: paired over seeds."""
    seeds, a, b = _paired(_test(other, study), _test(variant.name, study))
    if not seeds:
        return None
    result = stats.compare(a, b, claim="greater", margin=stats.ACCURACY_MARGIN, paired=True)
    return _claim(
        f"{variant.name}/beats-{other}",
        variant,
        f"{variant.name} gives a better test accuracy than {other}",
        kind,
        result,
        {
            "variant": variant.name,
            "compared_with": other,
            "seeds": seeds,
            "test_a": a,
            "test_b": b,
            "difference": result["difference"],
        },
    )


def reach(run: StoredRun, target: float) -> dict[str, Any]:
    """How long ``run`` trains until its validation loss first gets down to ``target``.

    ``epochs``, ``cpu`` and ``wall`` (seconds of training, CPU and wall clock)
    at that epoch, or ``None`` each if it never gets there (censored), and then
    what it trained in all (``trained_*``): a lower bound of what it would
    need. ``cpu`` is ``None`` for runs stored before CPU time was logged.
    """
    history = run.history
    last = history[-1] if history else {}
    has_cpu = bool(history) and all("cpu_elapsed" in r for r in history)
    epochs = first_reaching(history, target)
    return {
        "target": target,
        "censored": epochs is None,
        "epochs": epochs,
        "wall": first_reaching(history, target, field="elapsed"),
        "cpu": first_reaching(history, target, field="cpu_elapsed") if has_cpu else None,
        "trained_epochs": len(history),
        "trained_wall": last.get("elapsed"),
        "trained_cpu": last.get("cpu_elapsed") if has_cpu else None,
        "has_cpu": has_cpu,
    }


CENSORED_RULE = (
    "; a seed where B never reaches the target enters at what B trained in all, a lower bound "
    "that only understates how much slower B is, so with such a seed the claim can be refuted "
    "but not supported; B reaching it in none of 2 or more seeds refutes it"
)


def judge_faster(
    a: list[float],
    b: list[float],
    censored: list[bool],
    *,
    margin: float,
    unit: str,
    digits: int,
) -> dict[str, Any]:
    """B "converges faster" than A: paired test of B - A on time to A's best loss, with censoring.

    ``b[i]`` is B's time to the target in seed i, or where ``censored[i]`` a
    lower bound of it (what B trained without getting there). The claim is
    :func:`dnnlab.stats.compare`'s ``"less"`` with ``margin``, except that a
    censored seed forbids "supported" (the bound could hide anything above it)
    and B censored in every one of 2 or more seeds refutes it outright (one seed
    is no test, here as everywhere).
    """
    result = stats.compare(
        a, b, claim="less", margin=margin, paired=True, scale=1.0, unit=unit, digits=digits
    )
    rule = result["rule"] + CENSORED_RULE
    n = sum(censored)
    says = result["says"]
    verdict = result["verdict"]
    if n:
        says += f"; B never reaches the target in {n} of {len(b)} seeds (censored)"
        if n == len(b) and n >= 2:
            verdict = stats.REFUTED
        elif verdict == stats.SUPPORTED:
            verdict = stats.INCONCLUSIVE
    return {**result, "verdict": verdict, "rule": rule, "says": says, "censored": n}


TIME_KINDS = (
    ("epochs", " epochs", 1, "epochs"),
    ("cpu", " s", 0, "CPU seconds of training"),
    ("wall", " s", 0, "wall-clock seconds of training"),
)


def convergence_claims(
    variant: Variant, other: str, kind: str, study: dict[str, list[StoredRun]]
) -> list[dict[str, Any]]:
    """``variant`` reaches ``other``'s best validation loss sooner: epochs, CPU and wall time.

    Seed by seed, the target is the best validation loss of ``other``'s run;
    ``other``'s own time to it is that of its best epoch. The best epochs
    themselves are kept as a secondary number.
    """
    a_runs = {r.config.seed: r for r in _runs(other, study)}
    b_runs = {r.config.seed: r for r in _runs(variant.name, study)}
    seeds = sorted(set(a_runs) & set(b_runs))
    if not seeds:
        return []
    targets = {s: a_runs[s].summary["best_val_loss"] for s in seeds}
    ref = {s: reach(a_runs[s], targets[s]) for s in seeds}
    got = {s: reach(b_runs[s], targets[s]) for s in seeds}
    best = {
        "best_epoch_a": [a_runs[s].summary["best_epoch"] for s in seeds],
        "best_epoch_b": [b_runs[s].summary["best_epoch"] for s in seeds],
    }
    grouped = any(r.summary.get("group_size", 1) > 1 for s in seeds for r in (a_runs[s], b_runs[s]))
    claims = []
    for key, unit, digits, words in TIME_KINDS:
        if key == "cpu" and not all(ref[s]["has_cpu"] and got[s]["has_cpu"] for s in seeds):
            continue  # runs stored before CPU time was logged: said by the tell step
        if key != "epochs" and grouped:
            continue  # trained as members of one program: their seconds are the group's
        a = [ref[s][key] for s in seeds]
        b = [got[s][key] if not got[s]["censored"] else got[s][f"trained_{key}"] for s in seeds]
        margin = EPOCH_MARGIN if key == "epochs" else EPOCH_MARGIN * _per_epoch(a_runs, seeds, key)
        result = judge_faster(
            a, b, [got[s]["censored"] for s in seeds], margin=margin, unit=unit, digits=digits
        )
        claims.append(
            _claim(
                f"{variant.name}/faster-than-{other}/{key}",
                variant,
                f"{variant.name} reaches {other}'s best validation loss in fewer {words}",
                kind,
                result,
                {
                    "variant": variant.name,
                    "compared_with": other,
                    "seeds": seeds,
                    "measure": key,
                    "targets": [targets[s] for s in seeds],
                    "a": a,
                    "b": b,
                    "censored": [got[s]["censored"] for s in seeds],
                    "margin": margin,
                    **best,
                },
            )
        )
    return claims


def _per_epoch(runs: dict[int, StoredRun], seeds: list[int], key: str) -> float:
    """The median seconds per epoch (CPU or wall) over the runs' epochs after the first."""
    field = "cpu_seconds" if key == "cpu" else "seconds"
    values = [r[field] for s in seeds for r in runs[s].history[1:]] or [
        r[field] for s in seeds for r in runs[s].history
    ]
    return statistics.median(values)


def confound(variant: Variant, study: dict[str, list[StoredRun]]) -> dict[str, Any] | None:
    """How much of the book's gain the confound explains, paired over the seeds all three share.

    book gain = B - book's reference; isolated gain = B - isolating control;
    what the confound explains = control - book's reference = book gain - isolated
    gain (means of per-seed differences, so the three add up exactly).
    """
    if variant.book_changes is None or variant.changes is None:
        return None
    b, ctl, ref = (_test(n, study) for n in (variant.name, variant.changes, variant.book_changes))
    seeds = sorted(set(b) & set(ctl) & set(ref))
    if not seeds:
        return None
    book = _mean([b[s] - ref[s] for s in seeds])
    isolated = _mean([b[s] - ctl[s] for s in seeds])
    explained = _mean([ctl[s] - ref[s] for s in seeds])
    return {
        "variant": variant.name,
        "control": variant.changes,
        "book_reference": variant.book_changes,
        "seeds": seeds,
        "book_gain": book,
        "isolated_gain": isolated,
        "explained_by_confound": explained,
        "share": explained / book if book else None,
    }


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


def layer_stats_of(runs: list[StoredRun]) -> list[dict]:
    return [
        json.loads((r.path / "layer_stats.json").read_text())
        for r in runs
        if (r.path / "layer_stats.json").exists()
    ]


def self_normal_claims(variant: Variant, study: dict[str, list[StoredRun]]) -> list[dict[str, Any]]:
    """The net self-normalizes at initialization and after training; the control beside it."""
    mine = layer_stats_of(_runs(variant.name, study))
    control = layer_stats_of(_runs(variant.changes, study)) if variant.changes else []
    claims = []
    for when, moment in (("start", "at initialization"), ("end", "after training")):
        per_seed = [s[when] for s in mine]
        if not per_seed:
            continue
        verdict = self_normal_verdict(per_seed)
        ranges = _ranges(per_seed)
        ctl = [s[when] for s in control]
        claims.append(
            {
                "id": f"{variant.name}/self-normalizes-{when}",
                "part": variant.part,
                "text": f"the {variant.name} net self-normalizes {moment}",
                "kind": "probe",
                "verdict": verdict,
                "rule": SELF_NORMAL_RULE,
                "says": f"layer means {ranges['means']}, stds {ranges['stds']}",
                "numbers": {
                    "variant": variant.name,
                    "moment": when,
                    **ranges,
                    "control": variant.changes,
                    "control_verdict": self_normal_verdict(ctl) if ctl else None,
                    "control_ranges": _ranges(ctl) if ctl else None,
                },
            }
        )
    return claims


def _ranges(per_seed: list[list[dict]]) -> dict[str, str]:
    means = [r["mean"] for rows in per_seed for r in rows]
    stds = [r["std"] for rows in per_seed for r in rows]
    return {
        "means": f"{min(means):.2f} to {max(means):.2f}",
        "stds": f"{min(stds):.2f} to {max(stds):.2f}",
    }


def mc_claims(variant: Variant, study: dict[str, list[StoredRun]]) -> list[dict[str, Any]]:
    """MC Dropout against plain prediction of the same models: NLL and ECE, paired by seed.

    Accuracy is the variant's step claim already (:func:`accuracy_claim`).
    """
    runs = [r for r in _runs(variant.name, study) if _mc(r, "test", "mc", "nll") is not None]
    if not runs:
        return []
    claims = []
    for metric, scale, unit, digits in (("nll", 1.0, "", 3), ("ece", 100.0, " points", 1)):
        plain = [_mc(r, "test", "plain", metric) for r in runs]
        mc = [_mc(r, "test", "mc", metric) for r in runs]
        result = stats.compare(
            plain,
            mc,
            claim="less",
            margin=MC_MARGINS[metric],
            paired=True,
            scale=scale,
            unit=unit,
            digits=digits,
        )
        claims.append(
            _claim(
                f"{variant.name}/lower-{metric}",
                variant,
                f"MC Dropout gives a lower {metric.upper()} than plain prediction",
                "step",
                result,
                {
                    "seeds": [r.config.seed for r in runs],
                    "plain": plain,
                    "mc": mc,
                    "samples": runs[0].summary.get("mc_samples"),
                },
            )
        )
    return claims


def cost_claim(variant: Variant, out: Path) -> dict[str, Any] | None:
    """The step costs at least 5% more CPU time per epoch (``out/timing/<name>.json``)."""
    path = out / "timing" / f"{variant.name}.json"
    if not path.exists():
        return None
    timing = json.loads(path.read_text())
    ratio = timing["ratios"][variant.name]
    allowance = timing_allowance(timing)
    verdict = judge_ratio(ratio["cpu"], "at_least", BN_SLOWER, allowance=allowance)
    return {
        "id": f"{variant.name}/costs-per-epoch",
        "part": variant.part,
        "text": f"{variant.name} costs at least {100 * (BN_SLOWER - 1):.0f}% more CPU time per "
        f"training epoch than {timing['reference']}",
        "kind": "cost",
        "verdict": verdict,
        "rule": ratio_rule("at_least", BN_SLOWER, allowance=allowance),
        "says": f"CPU-time ratio {describe_ratio(ratio['cpu'])}, wall-time ratio "
        f"{describe_ratio(ratio['wall'])}, {timing['rounds']} interleaved rounds",
        "numbers": {"reference": timing["reference"], "rounds": timing["rounds"], **ratio},
    }


# ---- the study ----------------------------------------------------------------------------


def _describe(values: list[float]) -> dict[str, Any] | None:
    return stats.describe(values) if values else None


def variant_numbers(
    variant: Variant, runs: list[StoredRun], rates: dict[str, Any]
) -> dict[str, Any]:
    """What the results table shows of one variant, per seed."""
    values = variant_values(variant, runs)
    trained = not variant.after

    def per_seed(key: str) -> list[float]:
        return [r.summary[key] for r in runs if r.summary.get(key) is not None] if trained else []

    cpu = [
        statistics.median(row["cpu_seconds"] for row in r.history)
        for r in runs
        if trained and r.history and all("cpu_seconds" in row for row in r.history)
    ]
    return {
        "name": variant.name,
        "trains": variant.trains,
        "step": variant.step,
        "part": variant.part,
        "control": variant.control,
        "book": list(variant.book) if variant.book else None,
        "changes": variant.changes,
        "book_changes": variant.book_changes,
        "seeds": sorted(values),
        "test": [values[s]["test"] for s in sorted(values)],
        "val": [values[s]["val"] for s in sorted(values) if values[s]["val"] is not None],
        "learning_rates": sorted({r.config.train.learning_rate for r in runs}),
        "rate": rates.get(variant.trains),
        "mc_samples": runs[0].summary.get("mc_samples") if variant.after and runs else None,
        "best_epoch": per_seed("best_epoch"),
        "epochs_run": per_seed("epochs_run"),
        "seconds_per_epoch": per_seed("seconds_per_epoch"),
        "cpu_seconds_per_epoch": cpu,
        "evaluated": runs[0].summary.get("evaluated") if runs else None,
        "best_val_accuracy": per_seed("best_val_accuracy"),
    }


def judge_study(out: Path) -> dict[str, Any]:
    """Every claim of the study stored in ``out``, its checked facts and its table's numbers."""
    selected = select_runs(out)
    study = selected["study"]
    rates = (selected["plan"] or {}).get("lr", {})
    present = [n for n in STUDY if _runs(n, study) and variant_values(VARIANTS[n], _runs(n, study))]
    claims: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    confounds = []
    for name in present:
        v = VARIANTS[name]
        kind = "control" if v.control else "isolating" if v.book_changes else "step"
        compared = [(v.changes, kind)]
        if v.book_changes and v.book_changes != v.changes:
            compared.append((v.book_changes, "book"))
        for other, kind in compared:
            if other is None or other not in present:
                continue
            a, b = _runs(other, study)[0], _runs(name, study)[0]
            facts.append(
                {
                    "id": f"{name}/vs-{other}/differs-in",
                    "part": v.part,
                    "kind": kind,
                    "a": other,
                    "b": name,
                    "same_runs": VARIANTS[other].trains == v.trains,
                    "differs_in": config_difference(a, b),
                }
            )
            if (c := accuracy_claim(v, other, kind, study)) is not None:
                claims.append(c)
            if v.converges:
                claims += convergence_claims(v, other, kind, study)
        if (c := confound(v, study)) is not None:
            confounds.append(c)
        if v.self_normalizes:
            claims += self_normal_claims(v, study)
        if "mc-dropout" in v.after:
            claims += mc_claims(v, study)
        if v.timed and (c := cost_claim(v, out)) is not None:
            claims.append(c)
    return {
        "format": FORMAT,
        "planned": selected["planned"],
        "variants": {n: variant_numbers(VARIANTS[n], _runs(n, study), rates) for n in present},
        "claims": claims,
        "facts": facts,
        "confounds": confounds,
        "book_epochs": {n: [list(e) for e in VARIANTS[n].book_epochs] for n in present},
    }


def rejudge(out: Path) -> dict[str, Any]:
    """Judge the study stored in ``out`` and write ``out/exercise8/result.json``; return it."""
    result = judge_study(out)
    path = out / RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    return result


def stored_result(out: Path) -> dict[str, Any] | None:
    """The stored ``result.json`` in this format, or None."""
    try:
        result = json.loads((out / RESULT).read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("format") == FORMAT else None
