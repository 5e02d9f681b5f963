"""Command line: parse arguments, call the library, print. No logic lives here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import dnnlab  # noqa: F401  (sets the Keras backend before anything imports Keras)
from dnnlab.config import VARIANTS, positive_int
from dnnlab.errors import ConfigError, DnnlabError


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


def _search_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--search-lr",
        action="store_true",
        help="tune the learning rate first: a short grid 1e-5..1e-2 picked by validation loss "
        "(one-cycle: the LR range test); reused once stored",
    )
    p.add_argument("--samples", type=int, default=10, help="MC Dropout samples (10)")


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
        choices=[*VARIANTS, "mc-dropout"],
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
    _search_arguments(run)
    _data_arguments(run)
    _out_argument(run)
    run.add_argument("--force", action="store_true", help="train again even if already stored")

    study = sub.add_parser("exercise8", help="the whole exercise 8 study and its report")
    study.add_argument("--seeds", type=int, default=1, help="seeds per variant: 42, 43, ... (1)")
    _search_arguments(study)
    _data_arguments(study)
    _out_argument(study)

    find = sub.add_parser("lr-find", help="LR range test for a variant: plot and suggestion")
    find.add_argument("variant", choices=list(VARIANTS))
    _data_arguments(find)
    _out_argument(find)

    questions = sub.add_parser("questions", help="answer the chapter's questions by experiment")
    questions.add_argument("ids", nargs="*", metavar="ID", help="question ids (default: all)")
    questions.add_argument("--seeds", type=int, default=3, help="seeds where spread matters (3)")
    questions.add_argument("--force", action="store_true", help="measure again even if stored")
    questions.add_argument(
        "--rejudge",
        action="store_true",
        help="re-derive verdicts, answers and figures from the stored measurements (no training)",
    )
    _data_arguments(questions)
    _out_argument(questions)

    report = sub.add_parser("report", help="rebuild report.md and report.html from stored runs")
    _out_argument(report)

    runs = sub.add_parser("runs", help="list stored runs")
    _out_argument(runs)
    return parser


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


def cmd_run(args: argparse.Namespace) -> None:
    from dnnlab.lab import run_variant

    positive_int("--samples", args.samples)
    run = run_variant(
        args.variant,
        args.out,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        seed=args.seed,
        search_lr=args.search_lr,
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


def cmd_exercise8(args: argparse.Namespace) -> None:
    from dnnlab.lab import run_exercise8

    positive_int("--seeds", args.seeds)
    positive_int("--samples", args.samples)
    run_exercise8(
        args.out,
        data_dir=args.data_dir,
        seeds=args.seeds,
        search_lr=args.search_lr,
        samples=args.samples,
        check_md5=not args.no_md5,
        verbose=_verbosity(),
        overrides={"validation_size": args.validation_size, "train_size": args.train_size},
    )
    _print_report(args.out)


def cmd_lr_find(args: argparse.Namespace) -> None:
    from dnnlab.lab import lr_find

    result = lr_find(
        args.variant,
        args.out,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        overrides={"validation_size": args.validation_size, "train_size": args.train_size},
    )
    from dnnlab.lr_search import suggest_peak

    print(f"suggested constant learning rate {result['suggestion']:.3g}: {result['rule']}")
    print(f"suggested 1cycle peak {suggest_peak(result['lrs'], result['smoothed'])[1]}")
    print(f"curve and plot in {args.out / 'lr-find'}")


def cmd_questions(args: argparse.Namespace) -> None:
    from dnnlab.lab import run_questions

    positive_int("--seeds", args.seeds)
    if args.rejudge and args.force:
        raise ConfigError(
            "--rejudge reuses the stored measurements, --force measures again: pick one"
        )
    run_questions(
        args.out,
        ids=args.ids,
        data_dir=args.data_dir,
        check_md5=not args.no_md5,
        seeds=args.seeds,
        force=args.force,
        rejudge=args.rejudge,
    )
    _print_skipped_questions(args.out)
    print(f"results in {args.out / 'questions'}; report: {args.out / 'report.html'}")


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
    from dnnlab.claims import partials
    from dnnlab.runs import scan_runs

    if args.out.exists() and not args.out.is_dir():
        raise DnnlabError(f"{args.out} is a file, not a runs folder; pass --out the runs folder")
    scan = scan_runs(args.out)
    print_runs_table(scan.runs)
    for partial in partials(args.out):
        older = f"pid {partial.legacy_pid} of an older dnnlab"
        if partial.legacy_pid is not None and partial.live:
            print(f"training    {partial.run_id}: {older}")
        elif partial.legacy_pid is not None:
            print(f"interrupted {partial.run_id}: left by {older}; run it again to train it")
        elif partial.live:
            print(f"training    {partial.run_id}: {partial.owner.describe()}")
        else:
            print(f"interrupted {partial.run_id}: run it again to resume it ({partial.path.name})")
    for skipped in scan.skipped:
        print(f"dnnlab: skipped {skipped}", file=sys.stderr)


COMMANDS = {
    "run": cmd_run,
    "exercise8": cmd_exercise8,
    "lr-find": cmd_lr_find,
    "questions": cmd_questions,
    "report": cmd_report,
    "runs": cmd_runs,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every fault ends in one line on stderr and exit status 2, never a traceback.

    Errors the user can fix are :class:`DnnlabError`; an OSError that escaped
    them (a full disk or a read-only folder met outside the run store) is
    described the same way. Anything else is a bug: one line names it and the
    file that keeps its traceback (``DNNLAB_DEBUG=1`` raises it instead).
    """
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except DnnlabError as exc:
        print(f"dnnlab: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnnlab: interrupted; finished runs are kept, run again to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        from dnnlab.runs import storage_error

        print(f"dnnlab: error: {_one_line(storage_error(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("DNNLAB_DEBUG"):
            raise
        print(f"dnnlab: error: {_one_line(exc)} ({_bug_report(exc)})", file=sys.stderr)
        return 2
    return 0


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
