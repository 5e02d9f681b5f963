"""Workers: one process per core, each pinned to its own (free on every core if asked), set up
before JAX."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dnnlab import pinned
from dnnlab.errors import ConfigError, DnnlabError


def test_pin_sets_the_core_and_xla_flags_before_jax_starts():
    cpu = pinned.cores()[-1]
    code = (
        "import os, sys; from dnnlab.pinned import pin; "
        f"pin({cpu}); import jax; jax.numpy.ones(2).block_until_ready(); "
        "print(sorted(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'], "
        "os.environ['OPENBLAS_NUM_THREADS'])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "XLA_FLAGS": "--xla_dump_to=/nonexistent-never-written"},
    ).stdout.split()
    assert shown[0] == f"[{cpu}]"
    assert "--xla_dump_to=/nonexistent-never-written" in shown  # the user's flags are kept
    assert pinned.SINGLE_THREAD_FLAGS in " ".join(shown)
    assert shown[-1] == "1"


def test_one_thread_sets_the_xla_flags_and_leaves_every_core():
    code = (
        "import os; from dnnlab.pinned import one_thread; "
        "one_thread(); import jax; jax.numpy.ones(2).block_until_ready(); "
        "print(len(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown[0] == str(len(pinned.cores()))
    assert pinned.SINGLE_THREAD_FLAGS in " ".join(shown)


def test_pin_refuses_after_jax_started_and_names_the_cpus():
    import jax  # noqa: F401  (the test process has it)

    with pytest.raises(RuntimeError, match="before JAX is imported"):
        pinned.pin(pinned.cores()[0])
    with pytest.raises(RuntimeError, match="before JAX is imported"):
        pinned.one_thread()


def test_single_thread_env_adds_the_flags_once():
    env = pinned.single_thread_env({"XLA_FLAGS": "--a"})
    assert env["XLA_FLAGS"] == f"--a {pinned.SINGLE_THREAD_FLAGS}"
    assert pinned.single_thread_env(env)["XLA_FLAGS"] == env["XLA_FLAGS"]
    assert env["OMP_NUM_THREADS"] == "1"


def test_worker_counts_beyond_the_cores_are_one_line():
    assert pinned.check_count(1) == 1
    with pytest.raises(ConfigError, match=f"pass --workers {len(pinned.cores())} or fewer"):
        pinned.check_count(len(pinned.cores()) + 1)
    with pytest.raises(ConfigError, match="whole number"):
        pinned.check_count(0)


def test_workers_are_pinned_unless_told_not_to():
    code = "from dnnlab import pinned; print(pinned.PIN)"
    env = {k: v for k, v in os.environ.items() if k != "DNNLAB_PIN_WORKERS"}
    for value, pinning in ((None, "True"), ("0", "False"), ("1", "True")):
        extra = {} if value is None else {"DNNLAB_PIN_WORKERS": value}
        shown = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        ).stdout.strip()
        assert shown == pinning, value


def test_a_failing_worker_is_one_line_naming_its_core(tmp_path, capsys):
    with pytest.raises(DnnlabError) as info:
        pinned.run(["worker", "--out", str(tmp_path / "empty")], 1)
    cpu = pinned.cores()[0]
    message = str(info.value)
    assert message.startswith(f"the worker on cpu {cpu} stopped (exit status 2): no study in")
    assert "finished work is kept" in message and "\n" not in message
    assert f"[cpu {cpu}] dnnlab: pinned to cpu {cpu}" in capsys.readouterr().out


def test_workers_left_free_when_asked_are_numbered(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pinned, "PIN", False)
    with pytest.raises(DnnlabError) as info:
        pinned.run(["worker", "--out", str(tmp_path / "empty")], 1)
    assert str(info.value).startswith("worker 1 stopped (exit status 2): no study in")
    shown = capsys.readouterr().out
    assert "[worker 1] dnnlab: XLA's single-thread flags, free on every core" in shown


def test_started_workers_wait_for_go_and_leave_quietly_without_it(tmp_path, capsys):
    # Without waiting, the worker would look for a study at once and fail: there is none.
    started = pinned.start(["worker", "--out", str(tmp_path / "empty")], 1)
    started.stop()
    assert [p.returncode for p in started.procs] == [0]
    shown = capsys.readouterr().out
    cpu = pinned.cores()[0]
    assert f"[cpu {cpu}] dnnlab: pinned to cpu {cpu}" in shown
    assert "no study in" not in shown
    started.wait()  # nothing failed


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin two workers")
def test_the_command_line_starts_a_studys_workers_before_it_plans(fake_root, tmp_path):
    from dnnlab.cli import _early_workers, build_parser

    def early(*extra: str):
        argv = ["exercise8", "--out", str(tmp_path), "--data-dir", str(fake_root), "--no-md5"]
        return _early_workers(build_parser().parse_args([*argv, *extra]))

    assert early("--workers", "1") == 1
    assert early("--workers", "2", "--quick") == 2  # started by run_exercise8, in its workplace
    assert early("--workers", "2", "--rejudge") == 2  # nothing trains
    started = early("--workers", "2", "--storage", "sqlite:///x.db")
    try:
        assert [p.args[3:] for p in started.procs] == [
            [
                "worker",
                "--out",
                str(tmp_path),
                "--data-dir",
                str(fake_root / "cifar-10-batches-py"),
                "--no-md5",
                "--storage",
                "sqlite:///x.db",
                "--cpu",
                str(cpu),
                pinned.WAIT_FOR_GO,
            ]
            for cpu in pinned.cores()[:2]
        ]
    finally:
        started.stop()


def test_default_workers_one_per_core_where_they_pay_as_memory_allows(monkeypatch):
    assert pinned.available_memory() > 0  # this machine's /proc/meminfo
    monkeypatch.setattr(pinned, "cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(pinned, "available_memory", lambda: 7 * 2**30)
    assert pinned.default_workers("exercise8") == 2  # 3 GiB each
    monkeypatch.setattr(pinned, "available_memory", lambda: None)
    assert pinned.default_workers("exercise8") == 4
    monkeypatch.setattr(pinned, "available_memory", lambda: 2**30)
    assert pinned.default_workers("exercise8") == 1
    assert pinned.default_workers("questions") == 1
