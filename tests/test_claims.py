"""Run claims: exclusive across processes, taken over from dead owners, files adopted."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest

from dnnlab import claims
from dnnlab.claims import CLAIM_FILE, Owner, acquire, claim_path, partials
from dnnlab.errors import ClaimLost, RunClaimed

RUN = "baseline-seed1-0123abcd"


def _fake_claim(out, owner: Owner, files=()) -> None:
    """A claim folder as another process would have left it, with ``files`` in it."""
    path = claim_path(out, RUN)
    path.mkdir(parents=True)
    owner.write(path)
    for name in files:
        (path / name).write_text(name)


def _other(**changes) -> Owner:
    return dataclasses.replace(Owner.me("0000aaaa"), **changes)


def test_a_claim_is_exclusive_and_commit_releases_it(tmp_path):
    claim = acquire(tmp_path, RUN)
    assert claim.path == tmp_path / f".{RUN}.partial"
    assert Owner.read(claim.path).pid == os.getpid()
    with pytest.raises(RunClaimed, match=f"run {RUN} is being trained by pid {os.getpid()} on "):
        acquire(tmp_path, RUN)
    (claim.path / "summary.json").write_text("{}")
    claim.commit(tmp_path / RUN)
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN]
    assert sorted(p.name for p in (tmp_path / RUN).iterdir()) == ["summary.json"]
    acquire(tmp_path, RUN).abandon(keep=False)  # free again
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN]


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    return int(done.stdout)


def test_a_dead_owners_claim_is_taken_over_and_its_files_adopted(tmp_path):
    _fake_claim(tmp_path, _other(pid=_dead_pid()), files=["resume.npz", "history.csv"])
    claim = acquire(tmp_path, RUN)
    assert Owner.read(claim.path).token == claim.owner.token != "0000aaaa"
    assert sorted(p.name for p in claim.path.iterdir()) == [CLAIM_FILE, "history.csv", "resume.npz"]
    assert [p.name for p in tmp_path.iterdir()] == [claim.path.name]  # the stale folder is gone


def test_a_reused_pid_is_not_the_owner(tmp_path):
    # The parent process runs, but it started at another time than the owner recorded.
    _fake_claim(tmp_path, _other(pid=os.getppid(), started=1))
    assert acquire(tmp_path, RUN).path.is_dir()


def test_a_live_owner_on_this_machine_keeps_its_claim(tmp_path):
    _fake_claim(tmp_path, _other(pid=os.getppid(), started=claims._proc_start(os.getppid())))
    with pytest.raises(RunClaimed):
        acquire(tmp_path, RUN)


@pytest.mark.parametrize(("age", "taken"), [(claims.STALE_SECONDS + 5, True), (5, False)])
def test_another_machines_claim_is_stale_once_its_heartbeat_is_old(tmp_path, age, taken):
    _fake_claim(tmp_path, _other(host="elsewhere", pid=1, heartbeat=time.time() - age))
    if taken:
        assert acquire(tmp_path, RUN).owner.host != "elsewhere"
    else:
        with pytest.raises(RunClaimed, match=r"pid 1 on elsewhere \(epoch 0 done, heartbeat 5 s"):
            acquire(tmp_path, RUN)


def test_the_heartbeat_thread_refreshes_the_claim(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_SECONDS", 0.05)
    claim = acquire(tmp_path, RUN)
    first = Owner.read(claim.path).heartbeat
    time.sleep(0.3)
    assert Owner.read(claim.path).heartbeat > first
    claim.beat(epoch=3)
    assert Owner.read(claim.path).epoch == 3
    claim.abandon(keep=False)
    assert list(tmp_path.iterdir()) == []


def test_an_owner_whose_claim_was_taken_over_stops(tmp_path):
    claim = acquire(tmp_path, RUN)
    _other(host="elsewhere").write(claim.path)  # what a takeover leaves in the folder
    with pytest.raises(ClaimLost, match="was taken over by pid"):
        claim.beat(epoch=1)
    claim.abandon(keep=True)
    assert Owner.read(claim.path).host == "elsewhere"  # the new owner's folder is left alone


def test_an_abandoned_claim_keeps_its_files_for_the_next_owner(tmp_path):
    claim = acquire(tmp_path, RUN)
    (claim.path / "resume.npz").write_text("epoch 2")
    claim.beat(epoch=2)
    claim.abandon(keep=True)
    [stale] = partials(tmp_path)
    assert stale.path.name.startswith(f".{RUN}.partial.stale-") and not stale.live
    assert stale.owner.epoch == 2
    again = acquire(tmp_path, RUN)
    assert (again.path / "resume.npz").read_text() == "epoch 2"
    assert [p.live for p in partials(tmp_path)] == [True]


def test_an_older_dnnlabs_partial_folder_is_listed_live_while_its_process_runs(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".{RUN}.partial-{os.getpid()}").mkdir()
    (tmp_path / f".{RUN}.partial-{dead}").mkdir()
    (tmp_path / f".{RUN}.partial-x1").mkdir()  # not a pid: not a partial folder
    found = {p.legacy_pid: p.live for p in partials(tmp_path)}
    assert found == {os.getpid(): True, dead: False}
    assert {p.run_id for p in partials(tmp_path)} == {RUN}


def test_the_stale_folder_that_got_furthest_is_adopted(tmp_path):
    # Left by three dead owners whose takeovers raced (each stops at the next epoch).
    for n, epoch in enumerate((4, 9, 2)):
        stale = claim_path(tmp_path, RUN).with_name(f".{RUN}.partial.stale-{n}")
        stale.mkdir()
        _other(pid=_dead_pid(), epoch=epoch).write(stale)
        (stale / "resume.npz").write_text(f"epoch {epoch}")
    assert len(partials(tmp_path)) == 3
    claim = acquire(tmp_path, RUN)
    assert (claim.path / "resume.npz").read_text() == "epoch 9"
    assert [p.path for p in partials(tmp_path)] == [claim.path]


RACE = """
import sys, time
from pathlib import Path
from dnnlab import claims
from dnnlab.errors import RunClaimed
while time.time() < float(sys.argv[2]):
    pass
try:
    claims.acquire(Path(sys.argv[1]), "baseline-seed1-0123abcd")
    print("won", flush=True)
    time.sleep(3)
except RunClaimed:
    print("lost", flush=True)
"""


def test_of_processes_racing_for_one_claim_exactly_one_wins(tmp_path):
    start = time.time() + 1.5  # all started and importing done, then they go at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert results == ["lost"] * 5 + ["won"]
    owner = json.loads((claim_path(tmp_path, RUN) / CLAIM_FILE).read_text())
    assert owner["pid"] in [p.pid for p in procs]
