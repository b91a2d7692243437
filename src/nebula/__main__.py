"""``python -m nebula`` (and ``torchrun -m nebula``) runs the command line."""

import sys

try:
    from nebula.cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while the command line starts (imports): one line, no traceback
    print("nebula: interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
