"""Run claims: one process at a time trains a run, across processes and machines sharing ``out``.

A run trains in ``out/.<run_id>.partial``, and that folder is the run's claim.
It appears complete in one atomic step: a private folder holding ``claim.json``
(host, pid, heartbeat) is renamed to the claim's name, and renaming a folder
onto an existing non-empty one fails (POSIX ``rename(2)``; NFS renames are
atomic on the server), so of several processes exactly one wins. The owner
refreshes its heartbeat after every epoch and every :data:`HEARTBEAT_SECONDS`
from a background thread.

A claim is live while its owner is. On the same machine (same host name, boot
and pid namespace) that means its process runs: the pid exists and started
when the claim says (a reused pid is another process). On another machine it
means its heartbeat is younger than :data:`STALE_SECONDS`; clocks are assumed
to agree to well within that, as NTP gives.

A dead owner's claim is taken over by renaming it to
``.<run_id>.partial.stale-<nonce>``: one rename wins, the losers find it gone.
Whoever then claims the run adopts the files of the stale folder that got
furthest (its epoch checkpoint, history, TensorBoard events), so training
resumes where the dead owner stopped. Claims and stale folders never hold a
finished run: :meth:`Claim.commit` renames the claim to the run's final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dnnlab.errors import ClaimLost, RunClaimed

CLAIM_FILE = "claim.json"
HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 120.0
_HELD: set[str] = set()  # tokens of the claims this process holds


def claim_path(out: Path, run_id: str) -> Path:
    return out / f".{run_id}.partial"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _proc_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot, Linux), or None if unknown."""
    stat = _read_text(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name may hold spaces


def _machine() -> tuple[str, str | None, str | None]:
    """Host name, boot id and pid namespace: equal for processes that see each other's pids."""
    boot = _read_text(Path("/proc/sys/kernel/random/boot_id"))
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = None
    return socket.gethostname(), boot.strip() if boot else None, pidns


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Owner:
    """Who holds a claim, as written in its ``claim.json``."""

    host: str
    boot: str | None
    pidns: str | None
    pid: int
    started: int | None
    token: str
    heartbeat: float
    epoch: int = 0

    @classmethod
    def me(cls, token: str) -> Owner:
        host, boot, pidns = _machine()
        pid = os.getpid()
        return cls(host, boot, pidns, pid, _proc_start(pid), token, time.time())

    @classmethod
    def read(cls, folder: Path) -> Owner | None:
        """The owner recorded in ``folder``; None if it has no readable claim file."""
        try:
            return cls(**json.loads((folder / CLAIM_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, folder: Path) -> None:
        tmp = folder / f".{CLAIM_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, folder / CLAIM_FILE)

    def same_machine(self) -> bool:
        return (self.host, self.boot, self.pidns) == _machine()

    def alive(self) -> bool:
        if not self.same_machine():
            return time.time() - self.heartbeat < STALE_SECONDS
        if self.pid == os.getpid():
            return self.token in _HELD
        return _pid_runs(self.pid) and self.started in (None, _proc_start(self.pid))

    def describe(self) -> str:
        age = max(0.0, time.time() - self.heartbeat)
        return f"pid {self.pid} on {self.host} (epoch {self.epoch} done, heartbeat {age:.0f} s ago)"


def _abandoned(staging: Path) -> bool:
    """Whether a half-made claim folder was left by a dead process (not one still making it)."""
    owner = Owner.read(staging)
    if owner is not None:
        return not owner.alive()
    try:  # its maker has not written the claim file yet, or died before it did
        return time.time() - staging.stat().st_mtime > STALE_SECONDS
    except OSError:
        return False


class Claim:
    """A claim this process holds: train in :attr:`path`, then :meth:`commit` or :meth:`abandon`."""

    def __init__(self, path: Path, owner: Owner) -> None:
        self.path, self.owner = path, owner
        self._lock = threading.Lock()
        self._stop = threading.Event()
        _HELD.add(owner.token)
        self._thread = threading.Thread(target=self._beat_forever, daemon=True)
        self._thread.start()

    def _beat_forever(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            # A lost claim or a full disk: the training thread finds out at its next epoch.
            with contextlib.suppress(ClaimLost, OSError):
                self.beat()

    def check(self) -> None:
        """Raise :class:`ClaimLost` unless ``claim.json`` still names this process."""
        current = Owner.read(self.path)
        if current is None or current.token != self.owner.token:
            taker = f" by {current.describe()}" if current else ""
            raise ClaimLost(
                f"the claim on {self.path.name} was taken over{taker} (this process's "
                f"heartbeat looked older than {STALE_SECONDS:.0f} s); the new owner carries "
                "the run on: check its clock and load, and run again to pick up its result"
            )

    def beat(self, epoch: int | None = None) -> None:
        """Refresh the heartbeat (and record ``epoch`` epochs done)."""
        with self._lock:
            self.check()
            self.owner = replace(
                self.owner,
                heartbeat=time.time(),
                epoch=self.owner.epoch if epoch is None else epoch,
            )
            self.owner.write(self.path)

    def _stop_beating(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def commit(self, final: Path) -> None:
        """Rename the claim to ``final`` (replacing an older run there only now); release it."""
        self.check()
        self._stop_beating()
        if final.exists():
            old = final.with_name(f".{final.name}.old-{self.owner.token}")
            os.replace(final, old)
            os.replace(self.path, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, final)
        _HELD.discard(self.owner.token)
        (final / CLAIM_FILE).unlink(missing_ok=True)

    def abandon(self, *, keep: bool) -> None:
        """Release without a run: ``keep`` leaves its files (if any) for the next owner to adopt."""
        self._stop_beating()
        try:
            self.check()
        except (ClaimLost, OSError):
            return  # not ours any more: leave it to whoever holds it
        finally:
            _HELD.discard(self.owner.token)
        grave = self.path.with_name(f"{self.path.name}.stale-{self.owner.token}")
        try:
            os.rename(self.path, grave)
        except OSError:
            return
        if not keep or [p.name for p in grave.iterdir()] == [CLAIM_FILE]:
            shutil.rmtree(grave, ignore_errors=True)


def _create(path: Path) -> Claim | None:
    """Claim ``path`` if nobody holds it: a prepared folder renamed into place (atomic)."""
    token = secrets.token_hex(8)
    staging = path.with_name(f"{path.name}.new-{token}")
    staging.mkdir()
    owner = Owner.me(token)
    try:
        owner.write(staging)
        os.rename(staging, path)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOENT):
            return None  # claimed by another process (or our staging was swept away): look again
        raise
    return Claim(path, owner)


def _bury(path: Path, seen: Owner | None) -> None:
    """Move the dead claim at ``path`` aside; put it back if it turned out to be a new one."""
    grave = path.with_name(f"{path.name}.stale-{secrets.token_hex(8)}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return  # another process took it over first
    moved = Owner.read(grave)
    if (moved and moved.token) != (seen and seen.token):
        # A new claim appeared between our look and our rename: give it back. If yet
        # another appeared meanwhile, the moved one's owner finds its claim lost.
        with contextlib.suppress(OSError):
            os.rename(grave, path)


def _adopt(claim: Claim, out: Path, run_id: str) -> None:
    """Move into ``claim`` the files of the run's stale folder that got furthest; drop the rest.

    Also removes folders that dead processes left half-made (``.new-``) and the
    partial folders of older dnnlab versions (``.<run_id>.partial-<pid>``).
    """
    base = claim.path.name
    graves = [g for g in out.glob(f"{base}.stale-*") if g.is_dir()]
    best = max(graves, key=lambda g: (getattr(Owner.read(g), "epoch", -1), g.name), default=None)
    if best is not None:
        for entry in best.iterdir():
            if entry.name != CLAIM_FILE:
                os.replace(entry, claim.path / entry.name)
    for leftover in graves + [s for s in out.glob(f"{base}.new-*") if _abandoned(s)]:
        shutil.rmtree(leftover, ignore_errors=True)
    for legacy in out.glob(f"{base}-*"):
        pid = legacy.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _pid_runs(int(pid)):
            shutil.rmtree(legacy, ignore_errors=True)


def acquire(out: Path, run_id: str) -> Claim:
    """Claim ``run_id`` in ``out``, taking over a dead owner's claim and adopting its files.

    Raises :class:`~dnnlab.errors.RunClaimed` if a live process holds it.
    """
    path = claim_path(out, run_id)
    while True:
        claim = _create(path)
        if claim is not None:
            _adopt(claim, out, run_id)
            return claim
        owner = Owner.read(path)
        if owner is not None and owner.alive():
            raise RunClaimed(run_id, owner.describe())
        _bury(path, owner)


@dataclass(frozen=True)
class Partial:
    """A run in progress or interrupted, as found in ``out``.

    ``legacy_pid`` is set for the partial folder of a dnnlab older than claims
    (``.<run_id>.partial-<pid>``, no ``claim.json``): it is live while that pid runs.
    """

    run_id: str
    path: Path
    owner: Owner | None
    legacy_pid: int | None = None

    @property
    def live(self) -> bool:
        if self.legacy_pid is not None:
            return _pid_runs(self.legacy_pid)
        return self.owner is not None and self.owner.alive()


def partials(out: Path) -> list[Partial]:
    """Claims (live or dead), stale folders and older dnnlabs' partial folders, by run id."""
    found = []
    for path in sorted(out.glob(".*.partial*")) if out.is_dir() else []:
        run_id, _, rest = path.name[1:].partition(".partial")
        if not path.is_dir():
            continue
        if rest == "" or rest.startswith(".stale-"):
            found.append(Partial(run_id, path, Owner.read(path)))
        elif rest[:1] == "-" and rest[1:].isdigit():
            found.append(Partial(run_id, path, None, legacy_pid=int(rest[1:])))
    return found
