"""``python -m graphgrad`` is the ``graphgrad`` command (``python -m graphgrad tour``)."""

import sys

from .cli import main

sys.exit(main())
