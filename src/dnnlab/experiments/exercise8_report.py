"""The exercise 8 section of the report: it tells and draws, from the judged result only.

The verdicts, rules and numbers come from ``out/exercise8/result.json``
(:mod:`dnnlab.experiments.exercise8_judge`, which :func:`dnnlab.lab.build_report`
runs first); the sentences and tables from :mod:`.exercise8_tell`, the figures
from :mod:`.exercise8_draw`. What is left here are the parts that list stored
records as they are: each learning-rate search's candidates and cost, and the
runs kept apart from the study (other configs, diverged runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnnlab.experiments import exercise8_draw, exercise8_tell
from dnnlab.experiments.exercise8 import dropout_records, search_records
from dnnlab.experiments.exercise8_judge import (  # noqa: F401  (re-exported: scripts, tests)
    config_key,
    select_runs,
    self_normal_verdict,
    stored_result,
    variant_values,
)
from dnnlab.experiments.exercise8_tell import Glance, pct
from dnnlab.report import Block, Heading, Para, Table
from dnnlab.runs import StoredRun
from dnnlab.selection import SEARCH_RULE

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
    records: dict[str, dict[str, Any]],
    study: dict[str, list[StoredRun]],
    others: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The searches' cost beside the study's runs of the same configs, in epochs and seconds.

    ``epochs`` / ``seconds``: the candidates' own training (waits at rungs excluded);
    ``lost_*``: attempts abandoned when a worker died (their seconds run until it was
    declared dead); ``chosen_epochs``: the chosen candidates'; ``reused``: the runs that
    are a chosen candidate kept (``trained_as`` in their summary), not trained again, whose
    epochs and seconds ``run_epochs`` / ``run_seconds`` leave out (the searches count them);
    ``ratio``: ``epochs / run_epochs`` (None without runs). ``others`` are searches
    whose choice no run uses (the dropout rates not chosen): counted in the cost only.
    """
    both = [r for name in records for r in study.get(name, [])]
    runs = [r for r in both if "trained_as" not in r.summary]
    cost = {
        key: sum(r["cost"][key] for r in [*records.values(), *others])
        for key in ("epochs", "seconds", "lost_epochs", "lost_seconds")
    }
    chosen = [chosen_trial(r) for r in records.values()]
    run_epochs = sum(r.summary.get("epochs_run") or 0 for r in runs)
    return {
        **cost,
        "chosen_epochs": sum(t["epochs"] for t in chosen if t is not None),
        "runs": len(both),
        "reused": len(both) - len(runs),
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
    grids = dropout_records(out, rates)
    chosen = {entry.get("search", {}).get("record") for entry in rates.values()}
    others = [  # the dropout rates' searches not chosen: in the cost, not in the runs
        grids[trains][row["dropout_rate"]]
        for trains, entry in rates.items()
        for row in entry.get("dropout", {}).get("rates", [])
        if row["record"] not in chosen and row["dropout_rate"] in grids.get(trains, {})
    ]
    total = search_cost(records, study, others)
    ratio = "–" if total["ratio"] is None else f"{total['ratio']:.2f}×"
    cost = (
        f"The searches trained {total['epochs']} epochs in {_minutes(total['seconds'])} "
        f"(waits at rungs excluded); the study's {total['runs'] - total['reused']} other runs "
        f"of the same variants trained {total['run_epochs']} epochs in "
        f"{_minutes(total['run_seconds'])}: the searches cost {ratio} the study's epochs "
        "(minutes depend on how busy the machine was; epochs do not)."
    )
    if total["reused"]:
        cost += (
            f" The first seed's run of each searched variant ({total['reused']} in all) is its "
            "chosen candidate, kept and not trained again; its test set was evaluated once, "
            "after the choice."
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
            "halving: at each rung, only the best third of the candidates so far go on). "
            "The book's rate is the first candidate, the prior (1cycle: the LR range test's "
            "peak, with full cycles only), and the rate chosen is "
            f"{SEARCH_RULE.says()} (near ties go to the prior). " + cost
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
        if trains in grids:
            blocks += dropout_blocks(entry["dropout"], grids[trains])
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


def seed_blocks(planned: dict[str, Any] | None) -> list[Block]:
    """How many seeds each comparison got: the internal pilot's plan."""
    if not planned or not planned["comparisons"]:
        return []
    rows = []
    for c in planned["comparisons"]:
        needed = c.get("seeds")
        rows.append(
            (
                f"{c['variant']} vs {c['compared_with']}",
                "–" if c.get("sd") is None else f"{100 * c['sd']:.2f} points",
                c.get("reason") or ("beyond any budget" if needed is None else str(needed)),
                str(c["run"]) + (" (capped)" if c.get("capped") else ""),
            )
        )
    seeds = ", ".join(f"{t} {n}" for t, n in planned["seeds"].items())
    return [
        Heading("Seeds where they matter", 3, "e8-seeds"),
        Para(
            f"Rule: {planned['rule']}. Seeds per config: {seeds}. Only the pilot's spread is "
            "looked at, never its mean difference, so each verdict keeps the fixed design's "
            "rule; re-estimating the spread from a small pilot whose seeds are reused raises "
            'the type I error a little above its 2.5%: 2.9% to 3.9% for "B beats A" with a '
            "3-seed pilot and at most 6 seeds, at spreads of 0.5 to 2 margins (20,000 "
            "simulated studies each, `python scripts/pilot_type1.py --budgets 6`)."
        ),
        Table(
            ("comparison", "pilot's spread (std of B − A)", "seeds needed", "seeds run"),
            tuple(rows),
        ),
    ]


def dropout_blocks(dropout: dict[str, Any], grid: dict[float, dict[str, Any]]) -> list[Block]:
    """A searched dropout rate: each rate's own learning-rate search and the choice."""
    rows = []
    for i, row in enumerate(dropout["rates"]):
        record = grid.get(row["dropout_rate"])
        rate = f"{100 * row['dropout_rate']:g}%"
        if row["dropout_rate"] == dropout["chosen"]:
            rate = f"**{rate}** (chosen)"
        if i == 0:
            rate += " (the prior)"
        loss = row["best_val_loss"]
        rows.append(
            (
                rate,
                "–" if row["chosen"] is None else f"{row['chosen']:.3g}",
                "–" if loss is None else f"{loss:.4f}",
                "pending" if record is None else str(record["cost"]["epochs"]),
            )
        )
    chosen = dropout["chosen"]
    said = "not chosen yet" if chosen is None else f"**{100 * chosen:g}%**"
    return [
        Para(
            f"Its dropout rate is searched too: one learning-rate search (as above) per dropout "
            f"rate, the rate chosen among their chosen candidates by the same rule, the "
            f"exercise's 10% as the prior: {dropout['rule']}. Chosen: {said}; the table above "
            "is the chosen rate's search."
        ),
        Table(
            ("dropout rate", "its learning rate", "best val loss", "search epochs"),
            tuple(rows),
        ),
    ]


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
                pct([r.summary["test_accuracy"] for r in runs if r.summary.get("test_accuracy")]),
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


def section(out: Path, result: dict[str, Any] | None = None) -> tuple[list[Glance], list[Block]]:
    """The report's exercise 8 section and its answers at a glance, from ``out`` only.

    ``result`` is the judged study (default: the stored ``out/exercise8/result.json``).
    """
    selected = select_runs(out)
    study = selected["study"]
    result = result if result is not None else stored_result(out)
    head: list[Block] = [
        Heading("Exercise 8 on CIFAR-10 (Géron, chapter 11)", 2, "exercise-8"),
        Para(
            "Test accuracy is measured once per run on the weights the run keeps: the epoch "
            "with the lowest validation loss (early stopping with the best weights restored), "
            "or, for a schedule that anneals to the end, the final weights. Claims are judged "
            "on it; validation accuracy is shown for comparison with the book. Validation = "
            "first 5,000 training images, training = the other 45,000. Every verdict below is "
            "stored with its rule and numbers in exercise8/result.json; `dnnlab exercise8 "
            "--rejudge` re-derives them from the stored runs without training."
            + ("" if selected["planned"] else " No study.json: each variant's largest group.")
        ),
    ]
    if not study or result is None or not result["variants"]:
        return [], [*head, Para("No finished runs yet."), *apart_blocks(selected)]
    glance = exercise8_tell.glance_lines(result)
    rates = (selected["plan"] or {}).get("lr", {})
    body = exercise8_tell.blocks(result)
    body[1:1] = search_blocks(out, study, rates, glance) + seed_blocks(
        (selected["plan"] or {}).get("seed_plan")
    )
    body += exercise8_draw.probe_figures(result, study, out)
    body += exercise8_draw.curve_figures(study, out)
    parts = list(dict.fromkeys(v["part"] for v in result["variants"].values()))
    order = [parts[0], LR_PART, *parts[1:]] if parts else [LR_PART]
    glance.sort(key=lambda g: order.index(g[0]) if g[0] in order else len(order))
    return glance, [*head, *body, *apart_blocks(selected)]
