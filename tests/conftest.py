"""Shared fixtures: a tiny CIFAR-10 folder in the official format, made by the tests.

Each fake image's pixels depend on its label, so a small net can learn them.
Every test runs with dnnlab's and Keras's caches in a temporary folder, so the
user's caches are never read or written.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
# JAX's persistent compilation cache (dnnlab.backend): one for the session and its
# subprocesses, never the user's.
os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="dnnlab-jax-")
atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from dnnlab.data import META, TEST_BATCH, TRAIN_BATCHES  # noqa: E402

PER_BATCH = 24
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def fake_batch(rng: np.random.Generator, n: int) -> dict:
    labels = rng.integers(0, 10, n)
    # 1024 R, 1024 G, 1024 B values per row, as in the official files.
    base = (labels[:, None] * 25 + 5).astype(np.int64)
    noise = rng.integers(-5, 6, (n, 3072))
    data = np.clip(base + noise, 0, 255).astype(np.uint8)
    return {b"batch_label": b"fake", b"labels": labels.tolist(), b"data": data}


def write_fake_cifar(root: Path, seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py`` with 5 x 24 training and 24 test images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        with open(folder / name, "wb") as f:
            pickle.dump(fake_batch(rng, PER_BATCH), f, protocol=2)
    with open(folder / META, "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}, f)
    return folder


def checksums(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.name in (*TRAIN_BATCHES, TEST_BATCH, META)
    }


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DNNLAB_CACHE_DIR", str(home / "dnnlab-cache"))
    monkeypatch.setenv("KERAS_HOME", str(home / "keras"))
    monkeypatch.delenv("DNNLAB_DATA_DIR", raising=False)
    return home


@pytest.fixture
def fake_root(tmp_path) -> Path:
    """A folder that holds a fake ``cifar-10-batches-py``."""
    write_fake_cifar(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def tiny_config() -> RunConfig:
    """A 2 x 16 MLP on the fake data: seconds to train."""
    return RunConfig(
        variant="baseline",
        seed=7,
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(learning_rate=1e-3, epochs=3, patience=2, batch_size=16),
        data=DataConfig(validation_size=24),
    )


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    return found or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))), None)


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL of ``scripts/postgres`` in ``folder``: its storage URL; stop and start it."""

    url: str
    folder: str

    def _script(self, command: str) -> None:
        done = subprocess.run(
            ["bash", SCRIPT_POSTGRES, command, self.folder],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self._script("stop")

    def start(self) -> None:
        self._script("start")


SCRIPT_POSTGRES = str(Path(__file__).resolve().parents[1] / "scripts" / "postgres")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL started by ``scripts/postgres`` for the session (:class:`PostgresServer`).

    Skipped where PostgreSQL (``pg_ctl``) or its client (``psycopg``) is missing.
    A test that stops it starts it again before it ends.
    """
    if _pg_ctl() is None:
        pytest.skip("PostgreSQL (pg_ctl) is not installed")
    pytest.importorskip("psycopg", reason="pip install 'dnnlab[postgres]'")
    folder = tempfile.mkdtemp(prefix="dnnlab-pg-")  # the server's user must reach it
    try:
        started = subprocess.run(
            ["bash", SCRIPT_POSTGRES, "start", folder], capture_output=True, text=True, timeout=120
        )
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().splitlines()[-1]
        assert url.startswith("postgresql://")
        yield PostgresServer(url, folder)
    finally:
        subprocess.run(["bash", SCRIPT_POSTGRES, "stop", folder], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """The URL of the session's PostgreSQL (:func:`postgres_server`)."""
    return postgres_server.url
