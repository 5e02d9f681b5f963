"""A search's study storage: open it (SQLite or PostgreSQL), queue candidates, heartbeats.

**A database that restarts.** Optuna's ``RDBStorage`` turns any database
error into ``StorageInternalError`` at once (it retries only the creation
of a trial) and checks pooled connections before use only on MySQL. The
storage opened here (:class:`PatientStorage`) checks them on PostgreSQL too
(SQLAlchemy's ``pool_pre_ping``: a connection that died with a restarted
server is replaced before a statement is sent), bounds each connection
attempt to 10 s, and makes every call that meets an unreachable database
(a lost or refused connection) wait and try again, with back-off, for up to
``patience_seconds`` (:data:`PATIENCE_SECONDS`: 5 minutes, or
``$DNNLAB_STORAGE_PATIENCE`` seconds):
training in flight goes on when the database is back. Past that, the call
raises :class:`~dnnlab.errors.StorageUnreachable`, one line naming the
storage and what to do. Any other database error is raised as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import sys
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

from dnnlab.config import positive_int, positive_number
from dnnlab.errors import ConfigError, StorageError, StorageUnreachable
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


PATIENCE_SECONDS = 300.0  # how long a storage call waits for an unreachable database
CONNECT_TIMEOUT_SECONDS = 10  # one PostgreSQL connection attempt (a network that drops packets)

# The RDBStorage methods that open a database session: every one _CachedStorage
# and dnnlab call, and those they call, so that a retry redoes one whole transaction.
_SESSION_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "_create_new_trial",
    "_set_trial_param",
    "get_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "_get_best_trial_id",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "_get_trials",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (not that a statement was wrong)."""
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    return isinstance(cause, sqlalchemy.exc.DBAPIError) and (
        cause.connection_invalidated
        or isinstance(cause, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    )


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    lines = str(getattr(cause, "orig", None) or cause).strip().splitlines()
    return f"{type(getattr(cause, 'orig', None) or cause).__name__}: {lines[0] if lines else ''}"


def _notice(message: str) -> None:
    print(f"dnnlab: {message}", file=sys.stderr, flush=True)


class PatientStorage(optuna.storages.RDBStorage):
    """An ``RDBStorage`` whose calls wait out a database that is briefly unreachable.

    A call that meets a lost or refused connection is tried again after 0.5,
    1, 2, 4, then every 5 s, for up to ``patience`` seconds from its first
    failure; one line on stderr says it waits, one that the database is back.
    A retried write is one whole transaction again: one that was cut off
    before its commit is simply redone; one whose commit reached the server
    just before the connection died is found done (a claim is then not taken
    and its trial goes stale and is queued again; a queued candidate can be
    queued twice, which the worker already fails as a duplicate).

    Heartbeats are not recorded while the database is down, so right after
    an outage every running trial looks stale. For one grace period after a
    call of this process came through an outage, its stale-trial check finds
    none: the other workers' heartbeats resume within one interval, and
    their trials are not taken from them.
    """

    patience: float = PATIENCE_SECONDS
    shown: str = ""
    _back_at: float = -math.inf  # when a call last came through an outage (monotonic)

    def _patiently(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        first: float | None = None
        delay = 0.5
        while True:
            try:
                result = method(self, *args, **kwargs)
            except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
                if not _unreachable(exc):
                    raise
                now = time.monotonic()
                if first is None:
                    first = now
                    _notice(
                        f"search storage {self.shown} unreachable ({_first_line(exc)}); "
                        f"waiting up to {self.patience:g} s for it"
                    )
                if now - first >= self.patience:
                    raise StorageUnreachable(
                        f"search storage {self.shown} unreachable for {self.patience:g} s "
                        f"({_first_line(exc)}): start the database again (or check the "
                        "network), then run the same command again; finished runs and "
                        "ended candidates are kept"
                    ) from None
                time.sleep(min(delay, max(first + self.patience - now, 0.0)))
                delay = min(2 * delay, 5.0)
                continue
            if first is not None:
                self._back_at = time.monotonic()
                _notice(
                    f"search storage {self.shown} reachable again after "
                    f"{self._back_at - first:.0f} s; going on"
                )
            return result

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        if time.monotonic() - self._back_at < grace:
            return []
        return self._patiently(optuna.storages.RDBStorage._get_stale_trial_ids, study_id)


def _patient(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        return self._patiently(method, *args, **kwargs)

    return call


for _name in _SESSION_METHODS:
    if _name not in PatientStorage.__dict__:
        setattr(PatientStorage, _name, _patient(_name))


def _default_patience() -> float:
    """``$DNNLAB_STORAGE_PATIENCE`` seconds if set, else :data:`PATIENCE_SECONDS`."""
    text = os.environ.get("DNNLAB_STORAGE_PATIENCE")
    if not text:
        return PATIENCE_SECONDS
    try:
        return positive_number("DNNLAB_STORAGE_PATIENCE", float(text))
    except ValueError:
        raise ConfigError(
            f"DNNLAB_STORAGE_PATIENCE must be a number of seconds, got {text!r}"
        ) from None


def open_storage(
    url: str,
    *,
    heartbeat_seconds: int | None = 10,
    grace_seconds: int | None = None,
    patience_seconds: float | None = None,
) -> PatientStorage:
    """Optuna's RDBStorage for ``url`` (``sqlite:///FILE`` or ``postgresql://...``).

    With ``heartbeat_seconds`` every running trial records a heartbeat that
    often, and a trial whose last one is older than ``grace_seconds`` (default
    3 heartbeats) is failed by the next process that looks, which queues its
    candidate again. SQLite waits up to 60 s for a lock instead of failing.
    A call that finds the database unreachable waits for it up to
    ``patience_seconds`` (default :data:`PATIENCE_SECONDS`; :class:`PatientStorage`);
    opening it is tried 3 times.
    """
    given, url = url, _driver_url(url)
    patience = _default_patience() if patience_seconds is None else patience_seconds
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"not a storage URL: {url!r} (sqlite:///FILE or postgresql://...)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    sqlite = parsed.get_backend_name() == "sqlite"
    # isolation_level=None: pysqlite emits no BEGIN of its own; _begin_immediate does.
    engine: dict[str, Any] = {"connect_args": {"timeout": 60, "isolation_level": None}}
    if not sqlite:
        # A connect_timeout in the URL wins (connect_args would override it).
        timeout = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        engine = {
            "pool_pre_ping": True,
            "connect_args": {} if "connect_timeout" in parsed.query else timeout,
        }
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
                storage = PatientStorage(url, engine_kwargs=engine, **heartbeat)
            storage.patience = positive_number("patience seconds", patience)
            storage.shown = describe_storage(given)
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
            # A missed beat (the database busy or down) is retried next time, not waited
            # for; missing beats for the whole grace period lets another process take
            # the trial over.
            with contextlib.suppress(
                sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError
            ):
                optuna.storages.RDBStorage.record_heartbeat(self.storage, self.trial_id)
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
