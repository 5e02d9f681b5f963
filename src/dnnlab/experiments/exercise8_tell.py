"""Exercise 8, told: the report's tables and sentences from a judged result, and nothing else.

Everything here reads the ``result.json`` that
:func:`dnnlab.experiments.exercise8_judge.rejudge` writes: the claims with their
verdicts, rules and numbers, the checked facts, the confounds and the
per-variant numbers. It judges nothing and names no variant: which comparison a
claim is, and which part of the exercise it answers, come with the claim.
"""

from __future__ import annotations

import statistics
from typing import Any

from dnnlab import stats
from dnnlab.report import Block, Heading, Para, Table

# One line of the report's answers at a glance: part, claim, verdict (None: a number only),
# the number behind it, and the anchor of the section that shows it.
Glance = tuple[str, str, str | None, str, str]

KIND_LABEL = {
    "isolating": "isolating: against the step's control",
    "book": "the book's comparison",
    "step": "the step",
    "control": "control",
}
RULE_WORDS = {
    "book": "book",
    "range-test-peak": "range test",
    "search": "searched",
    "search-around-peak": "searched around the range test's peak",
}


def pct(values: list[float], digits: int = 1) -> str:
    """Accuracies in [0, 1] as '45.0 ± 1.0' (percent, mean ± std over seeds)."""
    return _num([100 * v for v in values], digits)


def _num(values: list[float], digits: int = 0) -> str:
    if not values:
        return "–"
    d = stats.describe(values)
    if d["std"] is None:
        return f"{d['mean']:.{digits}f}"
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"


def rate_cell(rates: list[float], entry: dict[str, Any] | None) -> str:
    """The rates a variant's runs trained with, how they were set, and the book's beside them."""
    shown = ", ".join(f"{lr:.3g}" for lr in rates)
    if entry is None:
        return shown
    how = RULE_WORDS.get(entry["rule"], entry["rule"])
    if entry["rule"] == "book":
        return f"{shown} ({how})"
    cell = f"{shown} ({how}; book {entry['book']:.3g})"
    dropout = entry.get("dropout", {})
    if dropout.get("chosen") is not None:
        grid = ", ".join(f"{100 * row['dropout_rate']:g}%" for row in dropout["rates"])
        cell += f"; dropout {100 * dropout['chosen']:g}% (searched among {grid})"
    return cell


def results_table(variants: dict[str, dict[str, Any]]) -> Table:
    """One row per variant, in the study's order."""
    rows = []
    for v in variants.values():
        trained = v["mc_samples"] is None
        compared = v["changes"] or "–"
        if v["book_changes"] and v["book_changes"] != v["changes"]:
            compared += f" (book: {v['book_changes']})"
        rows.append(
            (
                v["name"],
                v["step"],
                compared,
                str(len(v["seeds"])),
                rate_cell(v["learning_rates"], v["rate"])
                if trained
                else f"({v['trains']} runs, {v['mc_samples']} samples)",
                pct(v["test"]),
                pct(v["val"]),
                "{} / {}".format(*v["book"])
                if v["book"]
                else ("– (control)" if v["control"] else "– (not in the book)"),
                _num(v["best_epoch"]),
                _num(v["epochs_run"]),
                _num(v["seconds_per_epoch"], 2),
                _num(v["cpu_seconds_per_epoch"], 2),
            )
        )
    return Table(
        (
            "variant",
            "what it changes",
            "compared with",
            "seeds",
            "learning rate",
            "test acc % (mean ± std)",
            "val acc %",
            "book val acc % (2nd / 3rd ed.)",
            "best epoch",
            "epochs run",
            "s / epoch (wall)",
            "CPU s / epoch",
        ),
        tuple(rows),
    )


def _accuracy(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in claims if "/beats-" in c["id"]]


def _differs(fact: dict[str, Any]) -> str:
    if fact["same_runs"]:
        return "nothing: the same trained models, predicted another way"
    return "; ".join(f"{k} {a} → {b}" for k, (a, b) in fact["differs_in"].items()) or "nothing"


def confound_sentence(c: dict[str, Any]) -> str:
    share = "" if c["share"] is None else f", {100 * c['share']:.0f}% of it"
    return (
        f"Of {c['variant']}'s {100 * c['book_gain']:+.1f} points over {c['book_reference']} "
        f"(the book's comparison), {100 * c['explained_by_confound']:+.1f} come from what "
        f"{c['control']} changes ({c['control']} − {c['book_reference']}{share}); against "
        f"{c['control']}, which isolates it, the step itself gives "
        f"{100 * c['isolated_gain']:+.1f} points (means of per-seed differences over seeds "
        f"{', '.join(map(str, c['seeds']))})."
    )


def step_blocks(result: dict[str, Any]) -> list[Block]:
    """Each step against what isolates it, the book's comparison beside it, and the confound."""
    claims = _accuracy(result["claims"])
    if not claims:
        return []
    facts = {(f["b"], f["a"]): f for f in result["facts"]}
    rows = []
    for c in claims:
        fact = facts.get((c["numbers"]["variant"], c["numbers"]["compared_with"]))
        rows.append(
            (
                c["text"],
                KIND_LABEL.get(c["kind"], c["kind"]),
                _differs(fact) if fact else "–",
                c["says"],
                c["verdict"],
            )
        )
    blocks: list[Block] = [
        Heading("Step by step: does each change help?", 3, "e8-steps"),
        Para(
            "Each variant against the variant that isolates its step (its control: the two "
            "differ in the step, and in the learning rate, tuned for each), and, where the book "
            "compares it with a variant that differs in more, that comparison beside it, "
            "labelled as the book's. On test accuracy, one value per seed, paired by seed (the "
            "same seed gives "
            f"both the same data order). Rule: {claims[0]['rule']}. The settings each pair "
            "differs in are read from the stored configs (a checked fact, not a verdict)."
        ),
        Table(
            (
                "claim (B = first, A = second)",
                "comparison",
                "the configs differ in",
                "B − A on test accuracy",
                "verdict",
            ),
            tuple(rows),
        ),
    ]
    if result["confounds"]:
        blocks.append(Para(" ".join(confound_sentence(c) for c in result["confounds"])))
    return blocks


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "–"


def convergence_blocks(result: dict[str, Any]) -> list[Block]:
    """Epochs and time to the compared run's best validation loss, censored runs said so."""
    claims = [c for c in result["claims"] if "/faster-than-" in c["id"]]
    if not claims:
        return []
    rows = []
    for c in claims:
        n = c["numbers"]
        reached = [b for b, cut in zip(n["b"], n["censored"], strict=True) if not cut]
        rows.append(
            (
                c["text"],
                KIND_LABEL.get(c["kind"], c["kind"]),
                _median(n["a"]),
                _median(reached) if reached else "never",
                f"{sum(n['censored'])} of {len(n['censored'])}",
                c["says"],
                c["verdict"],
            )
        )
    lines = []
    for c in claims:
        if c["numbers"]["measure"] != "epochs":
            continue
        n = c["numbers"]
        lines.append(
            f"{n['variant']} vs {n['compared_with']}: best "
            f"epochs (median) {statistics.median(n['best_epoch_b']):.0f} vs "
            f"{statistics.median(n['best_epoch_a']):.0f}"
        )
    book = [
        f"{name}: {b} vs {a} epochs ({ed} ed.)"
        for name, pairs in result["book_epochs"].items()
        for (b, a), ed in zip(pairs, ("2nd", "3rd"), strict=False)
    ]
    missing = any(
        v["cpu_seconds_per_epoch"] == [] and v["mc_samples"] is None
        for v in result["variants"].values()
    )
    return [
        Heading("Does it converge faster?", 3, "e8-convergence"),
        Para(
            "Géron's measure: how long a run trains until its validation loss first gets down to "
            "the best validation loss of the run it is compared with (the same seed); that run's "
            "own time is its best epoch. Counted in epochs, in CPU seconds of training (which "
            "load inflates far less) and in wall seconds. A run that never gets there is "
            "censored: it enters at what it trained, a lower bound. "
            + (f"The book: {'; '.join(book)}. " if book else "")
            + f"Rule: {claims[0]['rule']}."
            + (" Runs stored before CPU time was logged have no CPU rows." if missing else "")
        ),
        Table(
            (
                "claim (B = first, A = second)",
                "comparison",
                "A (median)",
                "B (median of seeds that reach it)",
                "B censored",
                "B − A",
                "verdict",
            ),
            tuple(rows),
        ),
        *(
            [
                Para(
                    "Secondary (the best epoch marks where overfitting starts and moves with the "
                    "learning rate): " + "; ".join(lines) + "."
                )
            ]
            if lines
            else []
        ),
    ]


def cost_blocks(result: dict[str, Any]) -> list[Block]:
    claims = [c for c in result["claims"] if c["kind"] == "cost"]
    if not claims:
        return []
    return [
        Heading("What does the step cost per epoch?", 3, "e8-cost"),
        *(
            Para(
                f"{c['text']}: **{c['verdict']}** — one training epoch of fresh nets of each "
                f"config, interleaved: {c['says']}. Rule: {c['rule']}."
            )
            for c in claims
        ),
    ]


def probe_blocks(result: dict[str, Any]) -> list[Block]:
    claims = [c for c in result["claims"] if c["kind"] == "probe"]
    if not claims:
        return []
    rows = []
    for c in claims:
        n = c["numbers"]
        rows.append((c["text"], c["verdict"], n["means"], n["stds"]))
        if n["control_ranges"]:
            rows.append(
                (
                    f"control: the {n['control']} net, "
                    + ("at initialization" if n["moment"] == "start" else "after training"),
                    n["control_verdict"],
                    n["control_ranges"]["means"],
                    n["control_ranges"]["stds"],
                )
            )
    return [
        Heading("Does the net self-normalize?", 3, "e8-selu"),
        Para(
            "Claim: the net's hidden layers stay near mean 0, std 1, measured on 256 validation "
            f"images; the variant it changes is the control. Rule: {claims[0]['rule']}."
        ),
        Table(("claim", "verdict", "layer means", "layer stds"), tuple(rows)),
    ]


def mc_blocks(result: dict[str, Any]) -> list[Block]:
    claims = [c for c in result["claims"] if "/lower-" in c["id"]]
    if not claims:
        return []
    samples = claims[0]["numbers"]["samples"]
    return [
        Heading("MC Dropout without retraining", 3, "e8-mc-dropout"),
        Para(
            f"The trained models, not retrained, predict the test set {samples} times with "
            "dropout sampled; the probabilities are averaged. Plain and MC predictions of the "
            "same model are paired by seed. model.predict never samples dropout: Keras runs "
            "layers in inference mode there, so MC Dropout calls the dropout layers with "
            "training=True while any BatchNormalization stays in inference mode. Rule: "
            f"{claims[0]['rule']} (margins: 0.01 nats of NLL, 1 point of ECE; accuracy is in "
            "the step-by-step table)."
        ),
        Table(
            ("claim", "MC − plain", "verdict"),
            tuple((c["text"], c["says"], c["verdict"]) for c in claims),
        ),
    ]


def final_weights_blocks(result: dict[str, Any]) -> list[Block]:
    """Variants judged on their final weights, with their best epoch's accuracy beside them."""
    blocks: list[Block] = []
    for v in result["variants"].values():
        if v["evaluated"] != "final" or v["mc_samples"] is not None:
            continue
        blocks.append(
            Para(
                f"{v['name']} is judged on its final weights (a fixed number of epochs, the best "
                "one not restored"
                + ("; the book's numbers for it are final-epoch numbers" if v["book"] else "")
                + f"): validation accuracy "
                f"{pct(v['val'])}%. The weights of the epoch with the lowest validation loss "
                f"(epoch {_num(v['best_epoch'])}) would give {pct(v['best_val_accuracy'])}%, "
                "shown for comparison only; the test set saw only the final weights."
            )
        )
    return [Heading("Judged on final weights", 3, "e8-final"), *blocks] if blocks else []


def glance_lines(result: dict[str, Any]) -> list[Glance]:
    """One line per headline claim: accuracy, epochs to the target, cost, probes, MC scores."""
    lines: list[Glance] = []
    base = next(iter(result["variants"].values()), None)
    if base is not None and base["changes"] is None and base["book"]:
        lines.append(
            (
                base["part"],
                "the book's net, test accuracy (validation; book 2nd / 3rd ed.)",
                None,
                f"{pct(base['test'])}% ({pct(base['val'])}%; {{}} / {{}})".format(*base["book"]),
                "exercise-8",
            )
        )
    anchors = {"cost": "e8-cost", "probe": "e8-selu"}
    for c in result["claims"]:
        if "/faster-than-" in c["id"]:
            if c["numbers"]["measure"] != "epochs":
                continue
            anchor = "e8-convergence"
        elif "/lower-" in c["id"]:
            anchor = "e8-mc-dropout"
        else:
            anchor = anchors.get(c["kind"], "e8-steps")
        label = "" if c["kind"] in ("step", "cost", "probe") else f" ({c['kind']})"
        lines.append((c["part"], c["text"] + label, c["verdict"], c["says"], anchor))
    return lines


def blocks(result: dict[str, Any]) -> list[Block]:
    """The section's judged part, in reading order (figures and search apart)."""
    return [
        results_table(result["variants"]),
        *step_blocks(result),
        *convergence_blocks(result),
        *cost_blocks(result),
        *probe_blocks(result),
        *mc_blocks(result),
        *final_weights_blocks(result),
    ]
