"""``python -m ordergate`` is the ``ordergate`` command."""

import sys

from ordergate.cli import main

sys.exit(main())
