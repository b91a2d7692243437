"""B3: Chamfer distance, batch 32 x 2,048 points (3D): forward + backward time and peak memory.

* ``nebula``: :func:`nebula.losses.chamfer.chamfer_distance` (nearest neighbours found without gradient on
  chunks of the (b, P, Q) distance block, distances recomputed on the matched pairs only).
* ``naive``: the full-cdist form, d = cdist(x, y)^2 (N, P, Q) with autograd through it,
  mean_i min_j d + mean_j min_i d.

Both return the per-cloud CD_mean (N,); their values are checked equal (relative 1e-4).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from benchmarks import common


def naive_chamfer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x: (N, P, 3), y: (N, Q, 3) -> (N,) CD_mean through the full (N, P, Q) distance tensor."""
    d = torch.cdist(x, y).pow(2)
    return d.min(2).values.mean(1) + d.min(1).values.mean(1)


def step_fn(method: str, batch: int, points: int):
    from nebula.losses.chamfer import chamfer_distance

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, points, 3, generator=g).requires_grad_(True)
    y = torch.randn(batch, points, 3, generator=g).requires_grad_(True)
    f = chamfer_distance if method == "nebula" else naive_chamfer
    holder: dict[str, Any] = {}

    def run() -> None:
        loss = f(x, y)
        loss.sum().backward()
        holder["value"] = loss.detach()
        x.grad = y.grad = None

    return run, holder


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = common.machine_info()
    print(common.header("B3 Chamfer distance", started), flush=True)
    rows, values = [], {}
    for method in ("nebula", "naive"):
        fn, holder = step_fn(method, args.batch, args.points)
        t = common.measure(fn, warmup=args.warmup, repeats=args.repeats, budget_s=args.budget_s)
        values[method] = holder["value"]
        peak = common.tensor_peak_bytes(fn)
        probe = common.rss_probe("benchmarks.chamfer", [method, args.batch, args.points]) if args.rss else {}
        rows.append({"method": method, "time": t, "tensor_peak_bytes": peak, "rss_delta_bytes": probe.get("rss_delta_bytes")})
        print(f"  {method:6s} median {common.fmt_seconds(t['median'])}  tensor peak {common.fmt_bytes(peak)}", flush=True)
    rel = float(((values["nebula"] - values["naive"]).abs() / values["naive"].abs()).max())
    ours, naive = rows
    ratios = {"naive_time_over_nebula": naive["time"]["median"] / ours["time"]["median"],
              "naive_memory_over_nebula": naive["tensor_peak_bytes"] / max(ours["tensor_peak_bytes"], 1)}
    print(common.table(["system", "fwd+bwd median", "min / max", "tensor peak", "RSS delta"],
                       [[r["method"], common.fmt_seconds(r["time"]["median"]),
                         f"{common.fmt_seconds(r['time']['min'])} / {common.fmt_seconds(r['time']['max'])}",
                         common.fmt_bytes(r["tensor_peak_bytes"]), common.fmt_bytes(r["rss_delta_bytes"])] for r in rows]))
    print(f"naive / nebula: time {ratios['naive_time_over_nebula']:.2f}x, memory {ratios['naive_memory_over_nebula']:.1f}x; "
          f"max relative difference of CD values {rel:.1e}")
    payload = {"config": {"batch": args.batch, "points": args.points, "warmup": args.warmup, "repeats": args.repeats},
               "rows": rows, "ratios": ratios, "max_relative_difference": rel, "equal_1e-4": rel <= 1e-4}
    path = common.write_result("chamfer", payload, started)
    print(f"wrote {path}")
    return payload


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget-s", type=float, default=30.0)
    p.add_argument("--no-rss", dest="rss", action="store_false")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chamfer", description=__doc__.splitlines()[0])
    p.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    add_arguments(p)
    args = p.parse_args(argv)
    if args.probe:
        common.probe_main(lambda: step_fn(args.probe[0], int(args.probe[1]), int(args.probe[2]))[0])
        return
    run(args)


if __name__ == "__main__":
    main()
