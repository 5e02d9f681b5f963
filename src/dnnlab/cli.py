"""Command line: parse arguments, call the library, print. No logic lives here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import dnnlab  # noqa: F401  (sets the Keras backend before anything imports Keras)
from dnnlab.config import NAMED_CONFIGS, positive_int
from dnnlab.errors import EXIT_OK, ConfigError, DnnlabError, exit_status
from dnnlab.pinned import PAYS, WAIT_FOR_GO, WORKER_MEMORY, default_workers

STUDY_VARIANTS = (*NAMED_CONFIGS, "mc-dropout")  # mc-dropout: the alpha-dropout runs, MC-predicted
SEARCH_LR_GONE = (
    "--search-lr (the 3-epoch grid) is gone: exercise8 now searches every variant's learning "
    "rate by default (docs/search.md); --lr-from-book keeps the book's rates"
)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="folder holding cifar-10-batches-py (or that folder itself); "
        "default: $DNNLAB_DATA_DIR, the Keras cache, dnnlab's cache, else download",
    )
    p.add_argument(
        "--no-md5",
        action="store_true",
        help="skip the md5 check against the official files (for custom or test data)",
    )
    p.add_argument("--validation-size", type=int, help="first N training images validate (5000)")
    p.add_argument("--train-size", type=int, help="keep only the first N training images")


def _search_arguments(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The learning-rate search's options (``defaults=False``: unset ones stay ``None``)."""

    def default(value):
        return value if defaults else None

    p.add_argument(
        "--trials",
        type=int,
        default=default(5),
        help="learning-rate search: candidates per constant-rate variant (5), the book's rate "
        "first, the others log-uniform over 1e-5..0.1, each trained like the run itself (up to "
        "its 100 epochs, early stopping with patience 20) on the first seed, never on the test "
        "set; one-cycle tries half as many (rounded up: 3) full 15-epoch cycles around its LR "
        "range test's peak. Expected cost: 0.7x to 1x the training of a 3-seed study",
    )
    p.add_argument(
        "--first-rung",
        type=int,
        default=default(9),
        help="learning-rate search: epoch of the first rung (9); candidates are judged at "
        "epochs 9, 27, 81 (x3 each), where the best third of the candidates so far (at "
        "least the best one) go on and the others are pruned",
    )
    p.add_argument(
        "--storage",
        help="the searches' Optuna storage URL (default: a SQLite file OUT/lr-search.db); "
        "postgresql://... for workers on several machines (scripts/postgres starts one)",
    )


def _study_arguments(p: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """The options that define an exercise 8 study."""

    def default(value):
        return value if defaults else None

    p.add_argument(
        "--seeds", type=int, default=default(1), help="seeds per variant: 42, 43, ... (1)"
    )
    p.add_argument(
        "--variants",
        nargs="+",
        choices=list(STUDY_VARIANTS),
        metavar="NAME",
        help=f"variants to study (all: {', '.join(STUDY_VARIANTS)})",
    )
    p.add_argument(
        "--lr-from-book",
        action="store_true",
        default=default(False),
        help="keep the book's learning rates (one-cycle: the LR range test's peak) "
        "instead of searching each variant's",
    )
    p.add_argument(
        "--search-lr", action="store_true", help=argparse.SUPPRESS
    )  # gone: a one-line error says so
    p.add_argument("--samples", type=int, default=default(10), help="MC Dropout samples (10)")
    p.add_argument(
        "--together",
        action="store_true",
        default=default(False),
        help="train each variant's seeds as one compiled program (jax.vmap; equal to one "
        "by one within rounding, faster; per-run seconds are then the group's)",
    )
    p.add_argument(
        "--seed-budget",
        type=int,
        default=default(None),
        metavar="N",
        help="at most N seeds per config (6): the --seeds are an internal pilot, whose spread "
        "sets each comparison's seeds for 80%% power at its margin",
    )
    p.add_argument(
        "--dropout-rates",
        type=float,
        nargs="+",
        metavar="RATE",
        default=default(None),
        help="alpha dropout's rates, each with its own learning-rate search, the first the "
        "prior (0.1 0.05 0.2 0.4, Géron's; with --lr-from-book: 0.1 only)",
    )
    _search_arguments(p, defaults=defaults)


def _workers_argument(p: argparse.ArgumentParser, command: str) -> None:
    default = default_workers(command)
    said = (
        f"one per core, as many as the available memory holds at {WORKER_MEMORY // 2**30} GiB each"
        if PAYS[command]
        else str(default)
    )
    p.add_argument(
        "--workers",
        type=int,
        default=default,
        help="processes sharing the work, each pinned to a core of its own "
        f"(default: {said}; 1: all in this process, on every core); a BN net's numbers are "
        "then a one-core process's, whatever the count above 1 (DNNLAB_PIN_WORKERS=0: "
        "this process's, slower); on an idle 2-core machine faster for exercise 8, not for "
        "the questions (docs/benchmarks.md, docs/reproducibility.md)",
    )


def _out_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs", type=Path, help="folder for runs and reports (runs/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnnlab",
        description="Chapter 11 of Hands-On Machine Learning, answered by experiment on CIFAR-10.",
    )
    parser.add_argument("--version", action="version", version=f"dnnlab {dnnlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train one variant (reuses a finished identical run)")
    run.add_argument(
        "variant",
        choices=[*NAMED_CONFIGS, "mc-dropout"],
        help="which network (mc-dropout: the alpha-dropout run, predicted with MC Dropout)",
    )
    run.add_argument("--seed", type=int, default=42, help="random seed (42)")
    run.add_argument("--lr", type=float, help="learning rate; the 1cycle peak for one-cycle")
    run.add_argument("--epochs", type=int, help="maximum epochs (100; one-cycle: 15)")
    run.add_argument("--patience", type=int, help="early-stopping patience in epochs (20)")
    run.add_argument("--batch-size", type=int, help="batch size (32; one-cycle: 128)")
    run.add_argument("--activation", help="hidden activation (elu); swish gives the 3rd edition")
    run.add_argument("--init", help="kernel initializer (he_normal)")
    run.add_argument("--depth", type=int, help="hidden layers (20)")
    run.add_argument("--width", type=int, help="units per hidden layer (100)")
    run.add_argument(
        "--search-lr",
        action="store_true",
        help="search the learning rate first, as exercise8 does (the same search, reused)",
    )
    run.add_argument("--samples", type=int, default=10, help="MC Dropout samples (10)")
    _search_arguments(run)
    _data_arguments(run)
    _out_argument(run)
    run.add_argument("--force", action="store_true", help="train again even if already stored")

    study = sub.add_parser(
        "exercise8",
        help="the whole exercise 8 study (each variant's learning rate searched) and its report",
    )
    _study_arguments(study)
    _workers_argument(study, "exercise8")
    study.add_argument(
        "--rejudge",
        action="store_true",
        help="re-derive every verdict, sentence and figure from the stored runs (no training)",
    )
    _data_arguments(study)
    _out_argument(study)
    _quick_argument(study, "1 seed, 4,000 training images, at most 6 epochs, 2 search candidates")

    worker = sub.add_parser(
        "worker",
        help="work on the exercise 8 study in --out alongside other workers, until it is done",
        description="Take the study's pending work (search candidates first, then runs whose "
        "rate is known) until the study is complete. Start any number, on this machine or on "
        "others sharing --out (with --storage postgresql://... for the searches). Without "
        "study options the study in OUT/study.json is joined; with them they must agree.",
    )
    _study_arguments(worker, defaults=False)
    worker.add_argument(
        "--one-thread",
        action="store_true",
        help="run this worker with XLA's single-thread flags, free on every core (how "
        "--workers starts its workers with DNNLAB_PIN_WORKERS=0: a process's numbers on "
        "every core, BN nets' included; XLA's pool still has a thread per core)",
    )
    worker.add_argument(
        "--cpu",
        type=int,
        help="run this worker on this CPU alone, with XLA single-threaded (how --workers "
        "starts its workers; a BN net's numbers are then a one-core process's, not those of "
        "a process with every core)",
    )
    worker.add_argument(WAIT_FOR_GO, action="store_true", help=argparse.SUPPRESS)
    _data_arguments(worker)
    _out_argument(worker)

    prog = sub.add_parser(
        "progress",
        help="the study in --out: searches, runs done / to do, what each worker does, an ETA",
    )
    prog.add_argument("--storage", help="the searches' storage URL if it holds a password")
    _out_argument(prog)
    _json_argument(prog)

    find = sub.add_parser("lr-find", help="LR range test for a variant: plot and suggestion")
    find.add_argument("variant", choices=list(NAMED_CONFIGS))
    _data_arguments(find)
    _out_argument(find)
    _json_argument(find)

    questions = sub.add_parser("questions", help="answer the chapter's questions by experiment")
    questions.add_argument("ids", nargs="*", metavar="ID", help="question ids (default: all)")
    questions.add_argument("--seeds", type=int, default=3, help="seeds where spread matters (3)")
    questions.add_argument(
        "--force",
        action="store_true",
        help="measure again even if stored (measurements stored with other settings, seeds "
        "or data sizes are measured again without it)",
    )
    questions.add_argument(
        "--rejudge",
        action="store_true",
        help="re-derive verdicts, answers and figures from the stored measurements (no training)",
    )
    questions.add_argument(
        "--retime",
        action="store_true",
        help="measure the timings of the stored measurements again, then judge (no training): "
        "for timings taken on a busy machine",
    )
    _workers_argument(questions, "questions")
    # How --workers starts its workers (lab.work_on_questions): not for users.
    questions.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    questions.add_argument("--one-thread", action="store_true", help=argparse.SUPPRESS)
    questions.add_argument("--claims", type=Path, help=argparse.SUPPRESS)
    questions.add_argument(WAIT_FOR_GO, action="store_true", help=argparse.SUPPRESS)
    _data_arguments(questions)
    _out_argument(questions)
    _quick_argument(questions, "2 seeds, 2,000 training images, a few epochs each")

    report = sub.add_parser("report", help="rebuild report.md and report.html from stored runs")
    _out_argument(report)

    runs = sub.add_parser("runs", help="list stored runs")
    _out_argument(runs)
    _json_argument(runs)
    return parser


def _quick_argument(p: argparse.ArgumentParser, scale: str) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a quick tour, not the study: every part at small scale ({scale}), in OUT/tour, "
        "its report labelled a tour",
    )


def _json_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text (for scripts)"
    )


def _print_json(obj) -> None:
    from dnnlab.lab import plain

    print(json.dumps(plain(obj), indent=1, allow_nan=False))


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def print_summary(run) -> None:
    s = run.summary
    lines = [
        f"run         {s['run_id']}  ({s['status']})",
        f"stored in   {run.path}",
        f"epochs      {s.get('epochs_run')} run, best {s.get('best_epoch')} (lowest val_loss)",
        f"validation  loss {_fmt(s.get('best_val_loss'), '.4f')}, "
        f"accuracy {_fmt(s.get('best_val_accuracy'), '.4f')} "
        f"(max over epochs {_fmt(s.get('max_val_accuracy'), '.4f')})",
        f"test        accuracy {_fmt(s.get('test_accuracy'), '.4f')} "
        f"({'final' if s.get('evaluated') == 'final' else 'restored best'} weights, "
        "evaluated once)",
        f"time        {_fmt(s.get('seconds_per_epoch'), '.2f')} s/epoch (median), "
        f"{_fmt(s.get('total_seconds'), '.0f')} s in all",
    ]
    for split, name in (("valid", "validation"), ("test", "test")):
        scores = s.get("mc_dropout", {}).get(split)
        if scores:
            plain, mc = scores["plain"], scores["mc"]
            lines.append(
                f"MC Dropout  {s['mc_samples']} samples on {name}: accuracy "
                f"{mc['accuracy']:.4f} (plain {plain['accuracy']:.4f}), NLL {mc['nll']:.3f} "
                f"(plain {plain['nll']:.3f}), ECE {mc['ece']:.3f} (plain {plain['ece']:.3f})"
            )
    if s["status"] == "diverged":
        lines.append(f"diverged    non-finite loss in epoch {s.get('diverged_epoch')}")
    print("\n".join(lines))


def print_runs_table(runs) -> None:
    if not runs:
        print("no stored runs")
        return
    header = ("run", "status", "epochs", "best", "val_acc", "test_acc", "s/epoch")
    rows = [
        (
            r.summary.get("run_id", r.path.name),
            r.summary.get("status", "?"),
            _fmt(r.summary.get("epochs_run")),
            _fmt(r.summary.get("best_epoch")),
            _fmt(r.summary.get("best_val_accuracy"), ".4f"),
            _fmt(r.summary.get("test_accuracy"), ".4f"),
            _fmt(r.summary.get("seconds_per_epoch"), ".2f"),
        )
        for r in runs
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


def _verbosity() -> int:
    return 1 if sys.stdout.isatty() else 2


def _log(message: str) -> None:
    print(f"dnnlab: {message}", flush=True)


def cmd_run(args: argparse.Namespace) -> None:
    from dnnlab.lab import run_variant
    from dnnlab.search import Budget

    positive_int("--samples", args.samples)
    run = run_variant(
        args.variant,
        args.out,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        seed=args.seed,
        search_lr=args.search_lr,
        storage=args.storage,
        budget=Budget(trials=args.trials, first_rung=args.first_rung),
        log=_log,
        samples=args.samples,
        force=args.force,
        verbose=_verbosity(),
        lr=args.lr,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        activation=args.activation,
        init=args.init,
        depth=args.depth,
        width=args.width,
        validation_size=args.validation_size,
        train_size=args.train_size,
    )
    print_summary(run)


def _study_settings(args: argparse.Namespace) -> dict:
    """The study options given on the command line (unset ones are ``None``)."""
    if args.search_lr:
        raise ConfigError(SEARCH_LR_GONE)
    for flag in ("seeds", "samples", "trials", "first_rung", "seed_budget"):
        if getattr(args, flag) is not None:
            positive_int(f"--{flag.replace('_', '-')}", getattr(args, flag))
    sizes = {"validation_size": args.validation_size, "train_size": args.train_size}
    return {
        "variants": tuple(args.variants) if args.variants else None,
        "seeds": args.seeds,
        "samples": args.samples,
        "lr": None if args.lr_from_book is None else ("book" if args.lr_from_book else "search"),
        "trials": args.trials,
        "first_rung": args.first_rung,
        "together": args.together,
        "dropout_rates": None if args.dropout_rates is None else tuple(args.dropout_rates),
        "seed_budget": args.seed_budget,
        "overrides": {k: v for k, v in sizes.items() if v is not None} or None,
    }


def _early_workers(args: argparse.Namespace):
    """``--workers N`` of ``dnnlab exercise8``: N - 1 workers, started before this process
    imports the library (they import while it does and plans), and this process
    set up as they are, to work as the Nth (else the count, for the library)."""
    from dnnlab import data, pinned

    if args.rejudge or args.quick or pinned.check_count(args.workers) == 1:
        return args.workers
    options = data.worker_options(args.data_dir, not args.no_md5)
    started = pinned.beside(pinned.study_worker_argv(args.out, options, args.storage), args.workers)
    if started.starter_works:
        _log(_set_up(pinned.cores()[0] if pinned.PIN else None))
    return started


def cmd_exercise8(args: argparse.Namespace) -> None:
    settings = _study_settings(args)
    workers = _early_workers(args)
    try:
        from dnnlab.lab import rejudge_exercise8, run_exercise8, workplace
    except BaseException:
        if not isinstance(workers, int):
            workers.stop()
        raise

    if args.rejudge:
        result = rejudge_exercise8(args.out)
        for claim in result["claims"]:
            print(f"{claim['id']}: {claim['verdict']}")
        took = result["seconds"]
        print(
            f"dnnlab: {len(result['claims'])} claims judged again from the stored runs in "
            f"{took['judge']:.1f} s ({args.out / 'exercise8' / 'result.json'}), the report "
            f"written in {took['report']:.1f} s; nothing trained"
        )
        _print_report(args.out)
        return
    run_exercise8(
        args.out,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        storage=args.storage,
        verbose=_verbosity(),
        log=_log,
        quick=args.quick,
        workers=workers,
        **settings,
    )
    _print_report(workplace(args.out, quick=args.quick))


def _set_up(cpu: int | None) -> str:
    """What a worker process says it is: pinned to ``cpu``, or free on every core."""
    if cpu is not None:
        return f"pinned to cpu {cpu}, XLA single-threaded"
    return "XLA's single-thread flags, free on every core"


def _pin(args: argparse.Namespace) -> None:
    """A worker started by ``--workers``: on ``--cpu`` alone, XLA single-threaded, or
    free on every core with XLA's single-thread flags (``--one-thread``); before JAX is
    imported."""
    from dnnlab import pinned

    if args.cpu is not None:
        pinned.pin(args.cpu)
    elif args.one_thread:
        pinned.one_thread()
    else:
        return
    _log(_set_up(args.cpu))


def _told_to_go(args: argparse.Namespace) -> bool:
    """A worker started by ``--workers``, its imports done: whether its starter says go."""
    from dnnlab.pinned import wait_for_go

    return not args.wait_for_go or wait_for_go()


def cmd_worker(args: argparse.Namespace) -> None:
    _pin(args)  # before the library below imports JAX
    from dnnlab.data import SplitCache
    from dnnlab.experiments import exercise8_worker

    settings = _study_settings(args)
    splits = SplitCache(args.data_dir, not args.no_md5)
    if args.wait_for_go and args.data_dir is not None:
        splits.read()  # while the starter plans (it found the data folder, so none is fetched)
    if not _told_to_go(args):
        return
    runs = exercise8_worker.join_and_work(
        args.out,
        {k: v for k, v in settings.items() if v is not None},
        splits,
        storage=args.storage,
        verbose=_verbosity(),
        log=_log,
        poll_seconds=exercise8_worker.longest_poll(args.wait_for_go),
    )
    print(
        f"dnnlab: the study is complete ({len(runs)} runs); dnnlab report --out {args.out} "
        "writes its report"
    )


def cmd_lr_find(args: argparse.Namespace) -> None:
    from dnnlab.lab import lr_find

    result = lr_find(
        args.variant,
        args.out,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        overrides={"validation_size": args.validation_size, "train_size": args.train_size},
    )
    if args.json:
        _print_json(result)
        return
    print(f"suggested constant learning rate {result['suggestion']:.3g}: {result['rule']}")
    print(f"suggested 1cycle peak {result['peak_rule']}")
    print(f"curve and plot in {args.out / 'lr-find'}")


def cmd_questions(args: argparse.Namespace) -> None:
    if args.claims is not None:
        _questions_worker(args)
        return
    from dnnlab.lab import run_questions, workplace

    positive_int("--seeds", args.seeds)
    if args.rejudge and args.force:
        raise ConfigError(
            "--rejudge reuses the stored measurements, --force measures again: pick one"
        )
    if args.retime and (args.rejudge or args.force):
        raise ConfigError(
            "--retime measures the timings again and judges: drop --rejudge and --force"
        )
    run_questions(
        args.out,
        ids=args.ids,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        seeds=args.seeds,
        force=args.force,
        rejudge=args.rejudge,
        retime=args.retime,
        data_sizes={"validation_size": args.validation_size, "train_size": args.train_size},
        quick=args.quick,
        workers=args.workers,
    )
    out = workplace(args.out, quick=args.quick)
    _print_skipped_questions(out)
    print(f"results in {out / 'questions'}; report: {out / 'report.html'}")


def _questions_worker(args: argparse.Namespace) -> None:
    """One of the workers ``dnnlab questions --workers N`` starts (``--claims``, ``--cpu``)."""
    _pin(args)  # before the library below imports JAX
    from dnnlab.lab import work_on_questions

    if not _told_to_go(args):
        return
    work_on_questions(args.out, args.claims, data_dir=args.data_dir, check_md5=not args.no_md5)


def _print_skipped_questions(out: Path) -> None:
    from dnnlab.lab import skipped_questions

    for line in skipped_questions(out):
        print(f"dnnlab: skipped {line}", file=sys.stderr)


def _print_report(out: Path) -> None:
    from dnnlab.lab import study_runs

    print_runs_table(study_runs(out))
    _print_skipped_questions(out)
    print(f"report: {out / 'report.html'} (and report.md)")


def cmd_report(args: argparse.Namespace) -> None:
    from dnnlab.lab import build_report

    build_report(args.out)
    _print_report(args.out)


def cmd_runs(args: argparse.Namespace) -> None:
    from dnnlab.lab import list_runs

    listing = list_runs(args.out)
    if args.json:
        _print_json(listing.to_dict())
        return
    print_runs_table(listing.runs)
    for p in listing.in_progress:
        print(f"{p['state']:<11} {p['run_id']}: {p['note']}")
    for skipped in listing.skipped:
        print(f"dnnlab: skipped {skipped}", file=sys.stderr)


def cmd_progress(args: argparse.Namespace) -> None:
    from dnnlab.lab import study_progress

    progress = study_progress(args.out, args.storage)
    if args.json:
        _print_json(progress)
        return
    print("\n".join(progress.lines()))


EXIT_STATUSES = (
    ("0", "done"),
    (
        "1",
        "the work failed: a search or run that cannot go on, or a dnnlab bug (its traceback "
        "is saved to a file that the message names)",
    ),
    (
        "2",
        "usage: a wrong command line or setting (unknown option, --seeds 0, an unknown "
        "activation...)",
    ),
    (
        "3",
        "data or storage: CIFAR-10 missing or damaged, --out not writable or full, a damaged "
        "stored run or search storage",
    ),
    ("130", "interrupted (Ctrl-C); finished runs are kept, run again to resume"),
)


def reference(width: int = 100) -> str:
    """The command reference, docs/cli.md: each command's ``--help``, then the exit statuses.

    ``python scripts/cli_reference.py`` writes it; tests/test_cli.py keeps it in step.
    """
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width + 2)  # argparse wraps at the terminal's width less 2
    try:
        parts = [
            "# Command reference",
            "",
            "Generated from dnnlab's argument parser by `python scripts/cli_reference.py`; "
            "`tests/test_cli.py` fails when it is out of date.",
            "",
            "```text",
            parser.format_help().rstrip(),
            "```",
        ]
        for name, command in sub.choices.items():
            parts += ["", f"## dnnlab {name}", "", "```text", command.format_help().rstrip(), "```"]
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    parts += [
        "",
        "## Exit statuses",
        "",
        "Every fault ends with one line on stderr saying what is wrong and what to do, never a "
        "traceback, and leaves finished runs as they are.",
        "",
        "| status | meaning |",
        "| --- | --- |",
        *(f"| {code} | {meaning} |" for code, meaning in EXIT_STATUSES),
    ]
    return "\n".join(parts) + "\n"


COMMANDS = {
    "run": cmd_run,
    "exercise8": cmd_exercise8,
    "worker": cmd_worker,
    "progress": cmd_progress,
    "lr-find": cmd_lr_find,
    "questions": cmd_questions,
    "report": cmd_report,
    "runs": cmd_runs,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (:mod:`dnnlab.errors`: 0 done, 1 failed, 2 usage, 3 data).

    Every fault ends in one line on stderr that says what to do, never a
    traceback. Errors the user can fix are :class:`DnnlabError`; an OSError that
    escaped them (a full disk or a read-only folder met outside the run store)
    is described the same way. Anything else is a bug: one line names it and the
    file that keeps its traceback (``DNNLAB_DEBUG=1`` raises it instead).
    """
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {_one_line(exc)}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt as exc:
        print("dnnlab: interrupted; finished runs are kept, run again to resume", file=sys.stderr)
        return exit_status(exc)
    except OSError as exc:
        from dnnlab.runs import storage_error

        print(f"dnnlab: error: {_one_line(storage_error(exc))}", file=sys.stderr)
        return exit_status(exc)
    except Exception as exc:
        if os.environ.get("DNNLAB_DEBUG"):
            raise
        print(f"dnnlab: error: {_one_line(exc)} ({_bug_report(exc)})", file=sys.stderr)
        return exit_status(exc)
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, DnnlabError) else f"{type(exc).__name__}: {text}"


def _bug_report(exc: Exception) -> str:
    """Save the traceback of an unexpected error to a file; say where (or that it could not)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="dnnlab-error-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write("".join(traceback.format_exception(exc)))
    except OSError:
        return "a dnnlab bug; run with DNNLAB_DEBUG=1 for its traceback"
    return f"a dnnlab bug; traceback in {path}"


if __name__ == "__main__":
    sys.exit(main())
