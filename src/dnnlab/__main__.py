"""``python -m dnnlab`` is the ``dnnlab`` command."""

import sys

from dnnlab.cli import main

sys.exit(main())
