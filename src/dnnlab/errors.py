"""Errors a user can fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from pathlib import Path


class DnnlabError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(DnnlabError, ValueError):
    """An invalid setting (unknown activation, depth 0, negative learning rate...)."""


class DataError(DnnlabError):
    """The dataset is missing, truncated, corrupted or cannot be downloaded."""


class StorageError(DnnlabError):
    """Writing under ``--out`` failed: disk full, not writable, or a file where a folder should be.

    Raised with what was kept (finished runs are never touched; an interrupted
    run keeps its last epoch checkpoint and resumes from it next time).
    """


class UnreadableRun(DnnlabError):
    """A run folder that cannot be used as it is: damaged, half-written, or another dnnlab's format.

    ``reason`` says what is wrong with it, ``advice`` what to do.
    """

    def __init__(self, path: Path, reason: str, advice: str) -> None:
        super().__init__(f"{path}: {reason}; {advice}")
        self.path, self.reason, self.advice = path, reason, advice


class NewerRunFormat(UnreadableRun):
    """A run folder written by a newer dnnlab: never overwritten, never read as if it were known."""


class RunClaimed(DnnlabError):
    """Another live process is training this run (it holds the run's claim).

    ``owner`` describes it (host, pid, heartbeat); callers that have other work
    can move on to it and come back later.
    """

    def __init__(self, run_id: str, owner: str) -> None:
        super().__init__(
            f"run {run_id} is being trained by {owner}; wait for it to finish "
            "(dnnlab run waits by default) or work on another run"
        )
        self.run_id, self.owner = run_id, owner


class ClaimLost(DnnlabError):
    """This process's claim on a run was taken over (its heartbeat was seen as stale)."""


# Exit statuses of the `dnnlab` command (documented in docs/cli.md).
EXIT_OK = 0
EXIT_FAILURE = 1  # the work failed: a search or run that cannot go on, a dnnlab bug
EXIT_USAGE = 2  # the command line or a setting is wrong (argparse exits 2 too)
EXIT_DATA = 3  # the data or what is stored under --out cannot be used as it is
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); finished runs are kept


def exit_status(exc: BaseException) -> int:
    """The exit status for an error that ended a command (:data:`EXIT_USAGE`, ...)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, DataError | StorageError | UnreadableRun | OSError):
        return EXIT_DATA
    return EXIT_FAILURE
