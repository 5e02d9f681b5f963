"""Keras's backend and JAX's settings, fixed before either is first imported.

Keras 3 runs on JAX unless the user chose another backend with
``KERAS_BACKEND``. JAX keeps compiled programs in a persistent cache,
:func:`jax_cache_dir` (``$DNNLAB_CACHE_DIR/jax``, else
``$XDG_CACHE_HOME/dnnlab/jax`` or ``~/.cache/dnnlab/jax``), so a process
that compiles a program another process already compiled (the same HLO, on
the same JAX, XLA and machine) loads it instead: every ``dnnlab`` command,
worker and test process after the first. JAX 0.10 caches on CPU as on GPU
and TPU (``jax._src.compilation_cache.is_cache_used``); its key leaves out
source file names and line numbers, so equal programs of different models
share an entry. Every program is cached, not only those that compile for
at least JAX's default 1 s: a search candidate's programs compile in well
under that. Both settings are environment variables JAX reads when it is
imported, so a user's own ``JAX_COMPILATION_CACHE_DIR`` or
``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` wins;
``DNNLAB_JAX_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """dnnlab's cache: ``$DNNLAB_CACHE_DIR``, ``$XDG_CACHE_HOME/dnnlab`` or ``~/.cache/dnnlab``."""
    if os.environ.get("DNNLAB_CACHE_DIR"):
        return Path(os.environ["DNNLAB_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "dnnlab"


def jax_cache_dir() -> Path:
    """Where JAX's persistent compilation cache lives: ``cache_dir() / "jax"``."""
    return cache_dir() / "jax"


def configure() -> None:
    """Set Keras's backend and JAX's compilation cache unless the user set them."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if os.environ.get("DNNLAB_JAX_CACHE", "1") == "0":
        return
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(jax_cache_dir()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if "jax" in sys.modules:  # imported before dnnlab: it has read its environment already
        import jax

        if jax.config.jax_compilation_cache_dir is None:
            jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
