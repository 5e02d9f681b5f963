"""dnnlab: chapter 11 of Hands-On Machine Learning, answered by experiment.

Keras 3 runs on the JAX backend unless the user already chose another one with
``KERAS_BACKEND``, and JAX keeps its compiled programs in a persistent cache
(:mod:`dnnlab.backend`); both must be fixed before Keras or JAX is first
imported, which is why it happens here, before any submodule loads them.
"""

from dnnlab import backend

backend.configure()

from dnnlab.config import (  # noqa: E402
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    variant_config,
)
from dnnlab.errors import ConfigError, DataError, DnnlabError  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "DnnlabError",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "__version__",
    "variant_config",
]
