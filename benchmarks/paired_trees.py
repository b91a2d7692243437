"""Training speed of two source trees, paired: nvc-ml epochs of B2's setup (10,000 MNIST test images, MLP
784-512-256-128, d = 32, m = 30, batch 256) alternately in fresh processes of each tree.

    python -m benchmarks.paired_trees OTHER_SRC [--rounds 7] [--epochs 3] [--threads 2]

OTHER_SRC is the ``src`` folder of another checkout (e.g. ``git worktree add /tmp/base <commit>``); this
checkout's ``src`` is the other side. Each round runs one process of each tree (order alternating), each
timing ``--epochs`` epochs after one warm-up epoch by the process's CPU time (on a shared machine the
wall time swings with other users' load; with one thread CPU time is the work done, wall time is reported
beside it); the figure is the median over rounds of the per-round ratio this / other of CPU seconds per
epoch (below 1: this tree is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {src!r}); sys.path.insert(1, {root!r})
torch.set_num_threads({threads})
from benchmarks.training import NebulaSystem, load_mnist
system = NebulaSystem("nvc-ml", load_mnist())
system()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range({epochs}):
    system()
print(json.dumps({{"cpu": (time.process_time() - c0) / {epochs}, "wall": (time.perf_counter() - t0) / {epochs}}}))
"""


def epoch_seconds(src: Path, epochs: int, threads: int) -> dict[str, float]:
    code = CHILD.format(src=str(src), root=str(HERE), epochs=epochs, threads=threads)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", type=Path, help="the src folder of the other checkout")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    started = common.machine_info()
    this, other = HERE / "src", args.other.resolve()
    rows = []
    for r in range(args.rounds):
        order = [("this", this), ("other", other)] if r % 2 == 0 else [("other", other), ("this", this)]
        t = {name: epoch_seconds(src, args.epochs, args.threads) for name, src in order}
        row = {"this": t["this"]["cpu"], "other": t["other"]["cpu"], "this_wall": t["this"]["wall"],
               "other_wall": t["other"]["wall"]}
        row["ratio"] = row["this"] / row["other"]
        rows.append(row)
        print(f"round {r + 1}: CPU s/epoch this {row['this']:.3f}, other {row['other']:.3f}, ratio {row['ratio']:.3f} "
              f"(wall {row['this_wall']:.2f} / {row['other_wall']:.2f})", flush=True)
    median = statistics.median(r["ratio"] for r in rows)
    print(f"median CPU-time ratio this / other over {len(rows)} rounds: {median:.3f} "
          f"(this {statistics.median(r['this'] for r in rows):.3f} s/epoch, "
          f"other {statistics.median(r['other'] for r in rows):.3f} s/epoch)")
    common.write_result("paired_trees", {"other": str(other), "rows": rows, "median_ratio": median}, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
