"""B4: Lie group transport (ManifoldCLR), forward + backward samples/s and peak memory vs block size.

:class:`nebula.latent.lie.VariationalLieOperators` on features z0, z1: (N, D) with N = 256, D = 512,
M = 8 operators, block sizes b = 16, 32, 64 (S = D / b blocks): posterior and prior coefficient MLPs,
Laplace sample, T(c) = blockdiag expm(sum_m c_m Psi_m) by ``torch.linalg.matrix_exp`` on (N, S, b, b),
transport mse + Laplace KL, backward to every parameter and to z0.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from benchmarks import common


def step_fn(block: int, batch: int, dim: int, operators: int):
    from nebula.latent.lie import VariationalLieOperators

    g = torch.Generator().manual_seed(0)
    lie = VariationalLieOperators(dim, operators, block, hidden_mult=1, prior_warmup=0, generator=g)
    z0 = torch.randn(batch, dim, generator=g).requires_grad_(True)
    z1 = torch.randn(batch, dim, generator=g)

    def run() -> None:
        out = lie.losses(z0, z1, step=0, detach_z0=False)
        (out["transport"] + out["kl"]).backward()
        lie.zero_grad(set_to_none=True)
        z0.grad = None

    return run


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = common.machine_info()
    print(common.header("B4 Lie group transport", started), flush=True)
    rows = []
    for b in args.blocks:
        fn = step_fn(b, args.batch, args.dim, args.operators)
        t = common.measure(fn, warmup=args.warmup, repeats=args.repeats, budget_s=args.budget_s)
        peak = common.tensor_peak_bytes(fn)
        rows.append({"block": b, "blocks": args.dim // b, "time": t, "samples_per_s": args.batch / t["median"],
                     "tensor_peak_bytes": peak})
        print(f"  b={b:3d} median {common.fmt_seconds(t['median'])}  {args.batch / t['median']:.0f} samples/s  "
              f"tensor peak {common.fmt_bytes(peak)}", flush=True)
    print(common.table(["block b", "S = D/b", "fwd+bwd median", "samples/s", "min / max", "tensor peak"],
                       [[r["block"], r["blocks"], common.fmt_seconds(r["time"]["median"]), f"{r['samples_per_s']:.0f}",
                         f"{common.fmt_seconds(r['time']['min'])} / {common.fmt_seconds(r['time']['max'])}",
                         common.fmt_bytes(r["tensor_peak_bytes"])] for r in rows]))
    payload = {"config": {"batch": args.batch, "dim": args.dim, "operators": args.operators, "blocks": args.blocks,
                          "hidden_mult": 1, "warmup": args.warmup, "repeats": args.repeats}, "rows": rows}
    path = common.write_result("lie", payload, started)
    print(f"wrote {path}")
    return payload


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--blocks", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--operators", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget-s", type=float, default=20.0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lie", description=__doc__.splitlines()[0])
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
