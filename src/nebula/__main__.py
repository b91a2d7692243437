"""``python -m nebula`` (and ``torchrun -m nebula``) runs the command line."""

import sys

from nebula.cli import main

sys.exit(main())
