"""Start-up time of the command line: ``nebula --help`` and ``nebula --version`` against
``python -c "import numpy"`` (issue 17: at most 5x), measured in one run, interleaved.

    python -m benchmarks.startup [--repeats 7]

Each command is a fresh ``python`` process; the median wall-clock time of ``--repeats`` interleaved
rounds is reported (interleaving spreads a busy machine's load over all three commands equally).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

COMMANDS = {
    "import numpy": [sys.executable, "-c", "import numpy"],
    "nebula --help": [sys.executable, "-m", "nebula", "--help"],
    "nebula --version": [sys.executable, "-m", "nebula", "--version"],
}


def measure(repeats: int = 7) -> dict[str, float]:
    """Median seconds per command over ``repeats`` interleaved rounds (after one warm-up round)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_ in range(repeats + 1):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if round_:  # round 0 warms the file-system cache
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    med = measure(args.repeats)
    base = med["import numpy"]
    for name, t in med.items():
        print(f"{name:18s} {t * 1000:7.0f} ms   {t / base:5.2f}x import numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
