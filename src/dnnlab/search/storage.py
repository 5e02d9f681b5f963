"""A search's study storage: open it (SQLite or PostgreSQL), queue candidates, heartbeats."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial

from dnnlab.config import positive_int
from dnnlab.errors import ConfigError, StorageError
from dnnlab.search.design import ENDED, PARAM, PENDING


def default_storage(out: str | os.PathLike) -> str:
    """The embedded storage: a SQLite file ``OUT/lr-search.db``, no server."""
    return f"sqlite:///{(Path(out) / 'lr-search.db').resolve()}"


def _driver_url(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 where only it is installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None:
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url[len("postgresql://") :]
        raise ConfigError("a PostgreSQL storage needs a driver: pip install 'dnnlab[postgres]'")
    return url


def describe_storage(url: str) -> str:
    """``url`` as it may be shown and stored: as written, or with its password hidden."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


@contextlib.contextmanager
def _schema_lock(url: sqlalchemy.engine.URL) -> Iterator[None]:
    """Serialize table creation on a new SQLite file (two processes would both create them)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
    """Start every SQLite transaction with ``BEGIN IMMEDIATE`` (its write lock, at once).

    Optuna claims a queued trial by reading its state and writing RUNNING if it
    was WAITING, relying on ``SELECT ... FOR UPDATE``, which SQLite ignores;
    and pysqlite opens its transaction only at the write, so two processes can
    both read WAITING and both claim the trial (Optuna's FAQ on SQLite; seen
    here as a candidate trained twice). A transaction that takes the write lock
    at its start makes the read and the write one step: the other process waits
    (up to the 60 s timeout) and then reads RUNNING. SQLAlchemy's recipe for
    pysqlite's transactions ("Serializable isolation / Savepoints").
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_storage(
    url: str, *, heartbeat_seconds: int | None = 10, grace_seconds: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage for ``url`` (``sqlite:///FILE`` or ``postgresql://...``).

    With ``heartbeat_seconds`` every running trial records a heartbeat that
    often, and a trial whose last one is older than ``grace_seconds`` (default
    3 heartbeats) is failed by the next process that looks, which queues its
    candidate again. SQLite waits up to 60 s for a lock instead of failing.
    """
    url = _driver_url(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"not a storage URL: {url!r} (sqlite:///FILE or postgresql://...)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    sqlite = parsed.get_backend_name() == "sqlite"
    # isolation_level=None: pysqlite emits no BEGIN of its own; _begin_immediate does.
    engine = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {}
    heartbeat: dict[str, Any] = {}
    if heartbeat_seconds is not None:
        heartbeat = {
            "heartbeat_interval": positive_int("heartbeat seconds", heartbeat_seconds),
            "grace_period": positive_int("grace seconds", grace_seconds or 3 * heartbeat_seconds),
            "heartbeat_stale_trial_callback": _requeue_stale,
        }
    for attempt in range(3):
        try:
            with _schema_lock(parsed), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
            if sqlite:
                sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
            return storage
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            if sqlite and _damaged(exc):
                raise StorageError(
                    f"the search storage {parsed.database} is damaged ({_first_line(exc)}): "
                    "move it away (or delete it) and run again; the searches start over, "
                    "finished runs are kept"
                ) from None
            # Two processes creating PostgreSQL's tables at once: the second try finds them.
            if attempt == 2:
                raise StorageError(
                    f"cannot open the search storage {shown}: {_first_line(exc)}; check the URL "
                    "and that the database is up and reachable"
                ) from None
            time.sleep(1 + attempt)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"storage {shown} needs {exc.name}: pip install it") from None
        except OSError as exc:  # the SQLite file's folder cannot be made or written
            raise StorageError(
                f"cannot open the search storage {shown}: {exc}; pass --storage or an --out "
                "that can be written"
            ) from None
    raise AssertionError("unreachable")


DAMAGED_SQLITE = ("file is not a database", "database disk image is malformed")


def _damaged(exc: BaseException) -> bool:
    """Whether ``exc`` says an SQLite file is not a database (or a damaged one)."""
    return any(marker in str(exc) for marker in DAMAGED_SQLITE)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _candidate(trial: FrozenTrial) -> int:
    return int(trial.user_attrs["candidate"])


def _enqueue(study: optuna.Study, candidate: int, rate: float, **attrs: Any) -> None:
    study.enqueue_trial({PARAM: rate}, user_attrs={"candidate": candidate, **attrs})


def _requeue_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a stale trial's candidate again, unless another of its trials is alive.

    Optuna calls this in the one process that failed the trial (the change of
    state is atomic), as it calls ``RetryHeartbeatStaleTrialCallback``; this one
    knows candidates, so a candidate that is already queued again is left alone.
    """
    c = _candidate(trial)
    others = [t for t in study.get_trials(deepcopy=False) if _candidate(t) == c]
    if not any(t.state in (*ENDED, *PENDING) for t in others):
        rate = trial.system_attrs["fixed_params"][PARAM]
        _enqueue(study, c, rate, retry_of=trial.number)


class _Heartbeat:
    """Record a trial's heartbeat every ``interval`` seconds in a background thread."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = storage.get_heartbeat_interval()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            # A missed beat (the database busy) is retried next time; missing several
            # for the whole grace period lets another process take the trial over.
            with contextlib.suppress(
                sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError
            ):
                self.storage.record_heartbeat(self.trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@functools.cache
def _writer(url: str, heartbeat_seconds: int, grace_seconds: int | None):
    """One storage per URL and heartbeat setting, kept: a worker joins its searches often."""
    return open_storage(url, heartbeat_seconds=heartbeat_seconds, grace_seconds=grace_seconds)


@functools.cache
def _reader(url: str) -> optuna.storages.RDBStorage:
    """One storage per URL for reading, kept: progress is polled, and opening one takes ~0.5 s."""
    return open_storage(url, heartbeat_seconds=None)
