"""The background writer: writes in order, errors raised again in the training thread."""

import threading
import time

import pytest

from dnnlab.writer import Writer


def test_writes_run_in_order_in_another_thread_and_close_waits_for_them():
    done, threads = [], set()

    def job(i):
        def write():
            time.sleep(0.01)
            threads.add(threading.current_thread().name)
            done.append(i)

        return write

    with Writer() as writer:
        for i in range(5):
            writer.submit(job(i))
    assert done == [0, 1, 2, 3, 4]
    assert threads == {"dnnlab-writer"}


def test_a_failed_write_is_raised_at_the_next_hand_over_which_is_not_taken():
    done = []

    def fail():
        raise OSError("disk full")

    writer = Writer()
    writer.submit(fail)
    time.sleep(0.1)
    with pytest.raises(OSError, match="disk full"):
        writer.submit(lambda: done.append(1))
    writer.close()
    assert done == []


def test_close_raises_a_failure_of_the_last_write():
    writer = Writer()
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.close()


def test_a_failing_block_keeps_its_own_error_and_still_finishes_the_writes():
    done = []
    with pytest.raises(KeyError), Writer() as writer:
        writer.submit(lambda: (time.sleep(0.05), done.append(1)))
        raise KeyError("training failed")
    assert done == [1]
