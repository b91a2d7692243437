"""``python -m benchmarks [names] [--quick] [--big-memory]``: run the suite, one fresh process per benchmark.

Names: metric (B1), training (B2), chamfer (B3), lie (B4), scaling (B5), clustering (B6), text (B7). Clustering
and text take hours at full size: they run only when named. Default: all the others. Each prints its table and
writes benchmarks/results/<name>.json. ``--quick`` runs small sizes and few repeats (a smoke test of the suite,
not figures to quote). Other options go to the one benchmark named, e.g. ``python -m benchmarks text --datasets
trec --seeds 0``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks import common

BENCHMARKS = {"metric": "B1", "training": "B2", "chamfer": "B3", "lie": "B4", "scaling": "B5", "clustering": "B6",
              "text": "B7"}
#: run only when named (the full clustering and text suites take hours on 2 cores)
ON_REQUEST = ("clustering", "text")
QUICK = {
    "metric": ["--sizes", "64", "128", "256", "--repeats", "2", "--budget-s", "2"],
    "training": ["--repeats", "1", "--warmup", "0"],
    "chamfer": ["--batch", "4", "--points", "256", "--repeats", "2"],
    "lie": ["--batch", "16", "--dim", "64", "--repeats", "2"],
    "scaling": ["--samples", "500", "1000", "--sizes", "128", "256", "--repeats", "1"],
    "clustering": ["--sets", "digits", "--methods", "kmeans,tvae", "--seeds", "0", "--epochs", "3", "--no-docs",
                   "--tag", "quick"],
    "text": ["--datasets", "trec", "--seeds", "0", "--seq-seeds", "none", "--epochs", "2", "--no-tsne", "--name", "text-quick"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="any of " + ", ".join(BENCHMARKS) + " (default all but clustering)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1-2 repeats: checks the suite runs")
    p.add_argument("--big-memory", action="store_true",
                   help="let B1's baselines use up to 85%% of the free memory (the N^3 hinge transcription at "
                        "N = 1024 needs about 17.3 GB); for a machine nobody else is using")
    args, passed = p.parse_known_args(argv)
    names = args.names or [n for n in BENCHMARKS if n not in ON_REQUEST]
    unknown = [n for n in names if n not in BENCHMARKS]
    if passed and len(names) != 1:
        p.error(f"options {' '.join(passed)} are passed to one benchmark: name exactly one")
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    info = common.machine_info()
    print(common.header("nebula benchmarks", info), flush=True)
    failed = []
    for name in names:
        t0 = time.perf_counter()
        extra = list(QUICK[name]) if args.quick else []
        if args.big_memory and name == "metric":
            extra += ["--max-gb", f"{0.85 * common.mem_available_bytes() / common.GB:.1f}", "--mem-fraction", "0.85"]
        cmd = [sys.executable, "-m", f"benchmarks.{name}", *extra, *passed]
        rc = subprocess.run(cmd, cwd=common.ROOT, env=os.environ.copy()).returncode
        print(f"-- {BENCHMARKS[name]} {name}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
