"""One background thread that writes a run's per-epoch files, in order, off the training's path.

After each epoch a run rewrites its history and saves an ~8 MB checkpoint,
fsynced (:mod:`dnnlab.resume`); done in the training thread, the next epoch
waits for the disk. Here the training thread only copies what is to be
written to host memory and hands the write to this thread, which runs the
writes in the order they were handed over. At most one write waits while
another runs (a slow disk holds training back rather than piling up
checkpoints in memory). A write that raises is raised again in the training
thread at the next hand-over or when the writer closes, as the same
exception. Crash safety is the writes' own: each is atomic (a temporary file
renamed), so a killed run leaves the last write that finished, and resumes
from it with the same numbers.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable


class Writer:
    """Run handed-over writes in one thread, in order; ``with Writer() as w: w.submit(f)``."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dnnlab-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:  # after a failure the rest are skipped
                try:
                    job()
                except BaseException as exc:  # raised again in the training thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, job: Callable[[], None]) -> None:
        """Write ``job()`` after the writes handed over before it; raise an earlier failure."""
        self._raise()
        self._jobs.put(job)

    def close(self) -> None:
        """Wait for every write handed over; raise the first that failed."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(BaseException):  # the block's own error is the one to see
            self.close()
