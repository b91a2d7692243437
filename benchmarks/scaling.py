"""B5: scaling. Epoch time of nebula nvc-ml training on the first 1k, 2k, 4k, 8k, 10k MNIST test images
(should be linear in the sample count) and forward + backward time of the order-3 ratio metric loss vs
batch size N (should be quadratic). Each is summarised by the slope of log(time) against log(size).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks import common


def loglog_slope(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) against log(size): 1 linear, 2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.metric import step_fn
    from benchmarks.training import NebulaSystem, load_mnist

    started = common.machine_info()
    print(common.header("B5 scaling", started), flush=True)
    full = load_mnist()
    epoch_rows = []
    for n in args.samples:
        ds = full.subset(np.arange(n))
        ds.split = np.zeros(n, np.int8)
        system = NebulaSystem("nvc-ml", ds)
        t = common.measure(system, warmup=1, repeats=args.repeats)
        epoch_rows.append({"samples": n, "epoch_seconds": t, "us_per_sample": 1e6 * t["median"] / n})
        print(f"  epoch on {n:6d} samples: median {common.fmt_seconds(t['median'])} "
              f"({1e6 * t['median'] / n:.0f} us/sample)", flush=True)
    metric_rows = []
    for n in args.sizes:
        fn, _ = step_fn("nebula", "ratio", n)
        t = common.measure(fn, warmup=1, repeats=args.repeats * 2, budget_s=10.0)
        metric_rows.append({"n": n, "time": t})
        print(f"  ratio metric loss N={n:5d}: median {common.fmt_seconds(t['median'])}", flush=True)
    epoch_slope = loglog_slope([r["samples"] for r in epoch_rows], [r["epoch_seconds"]["median"] for r in epoch_rows])
    metric_slope = loglog_slope([r["n"] for r in metric_rows], [r["time"]["median"] for r in metric_rows])
    big = [r for r in metric_rows if r["n"] >= 1024]
    tail_slope = loglog_slope([r["n"] for r in big], [r["time"]["median"] for r in big]) if len(big) >= 2 else None
    print(common.table(["samples", "epoch median", "min / max", "us / sample"],
                       [[r["samples"], common.fmt_seconds(r["epoch_seconds"]["median"]),
                         f"{common.fmt_seconds(r['epoch_seconds']['min'])} / {common.fmt_seconds(r['epoch_seconds']['max'])}",
                         f"{r['us_per_sample']:.0f}"] for r in epoch_rows]))
    print(common.table(["N", "ratio loss fwd+bwd median", "min / max"],
                       [[r["n"], common.fmt_seconds(r["time"]["median"]),
                         f"{common.fmt_seconds(r['time']['min'])} / {common.fmt_seconds(r['time']['max'])}"] for r in metric_rows]))
    print(f"log-log slope: epoch time vs samples {epoch_slope:.2f} (linear = 1); metric loss vs N {metric_slope:.2f}"
          + (f", over N >= 1024 {tail_slope:.2f}" if tail_slope is not None else "") + " (quadratic = 2)")
    payload = {"config": {"samples": args.samples, "sizes": args.sizes, "repeats": args.repeats},
               "epochs": epoch_rows, "metric": metric_rows, "epoch_loglog_slope": epoch_slope,
               "metric_loglog_slope": metric_slope, "metric_loglog_slope_n_ge_1024": tail_slope}
    path = common.write_result("scaling", payload, started)
    print(f"wrote {path}")
    return payload


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 10000])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--repeats", type=int, default=3)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
