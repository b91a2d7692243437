"""B1: pseudo-label triplet losses, forward + backward time and peak memory vs batch size N.

Systems (z: (N, 32) ~ N(0, I), labels: 10 pseudo-classes drawn uniformly, margin nu = 1):

* ``nebula``: :class:`nebula.latent.metric.PseudoLabelMetricLoss` order 3, forms ``ratio``
  (D2_ij / (D2_ik + nu)) and ``hinge`` (max(0, D2_ij - D2_ik + margin)), O(N^2) memory.
* ``n3``: a literal transcription of the reference's formula (libs/metric.py of wangyida/nebula-anchors):
  dist_2d by broadcasting (N, N, d), positive/negative masks, dist_3d = dist_2d[:, :, None] /
  (dist_2d[:, None, :] + nu) and triplet = positive[:, :, None] * negative[:, None, :] as N x N x N tensors,
  loss = sum(dist_3d * triplet) / count_nonzero(triplet); with the masks fixed as nebula fixes them
  (j != i, no NaN without triplets) so the value must equal nebula's. The hinge form is the same frame
  with relu(dist_2d[:, :, None] - dist_2d[:, None, :] + margin).
* ``pml``: pytorch-metric-learning ``TripletMarginLoss`` with all triplets, configured to compute the
  same hinge loss (squared L2 distance without normalisation, mean over all triplets).

A baseline whose predicted peak (its measured peak at the previous size scaled by (N / N_prev)^3)
exceeds the memory budget is not run; its row gives the predicted memory and time instead.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from benchmarks import common

DIM, CLASSES, MARGIN = 32, 10, 1.0
SIZES = (256, 512, 1024, 4096)
CASES = (("nebula", "ratio"), ("nebula", "hinge"), ("n3", "ratio"), ("n3", "hinge"), ("pml", "hinge"))


def reference_n3_loss(z: torch.Tensor, labels: torch.Tensor, form: str, margin: float = MARGIN) -> torch.Tensor:
    """The reference's N x N x N formula (masks fixed for j = i and empty batches). z: (N, d), labels: (N,)."""
    n = len(z)
    dist_2d = (z.unsqueeze(0) - z.unsqueeze(1)).pow(2).sum(2)  # (N, N), like tf.expand_dims(feat, 0) - (feat, 1)
    onehots = torch.nn.functional.one_hot(labels, CLASSES).to(torch.int32)
    same = onehots @ onehots.T
    positive = same - torch.eye(n, dtype=torch.int32)  # the reference keeps j = i (its bug R5)
    negative = 1 - same
    if form == "ratio":
        dist_3d = dist_2d.unsqueeze(2) / (dist_2d.unsqueeze(1) + margin)
    else:
        dist_3d = torch.relu(dist_2d.unsqueeze(2) - dist_2d.unsqueeze(1) + margin)
    triplet = positive.unsqueeze(2) * negative.unsqueeze(1)
    count = torch.count_nonzero(triplet).clamp_min(1).to(z.dtype)  # the reference divides 0 by 0 (bug R4)
    return (dist_3d * triplet.to(z.dtype)).sum() / count


def make_loss(method: str, form: str):
    """Callable (z, labels) -> scalar loss for one system."""
    if method == "nebula":
        from nebula.latent.metric import PseudoLabelMetricLoss

        return PseudoLabelMetricLoss(3, form=form, margin=MARGIN, hinge_margin=MARGIN)
    if method == "n3":
        return lambda z, labels: reference_n3_loss(z, labels, form)
    if method == "pml":
        from pytorch_metric_learning.distances import LpDistance
        from pytorch_metric_learning.losses import TripletMarginLoss
        from pytorch_metric_learning.reducers import MeanReducer

        return TripletMarginLoss(margin=MARGIN, triplets_per_anchor="all",
                                 distance=LpDistance(normalize_embeddings=False, p=2, power=2), reducer=MeanReducer())
    raise ValueError(f"unknown method {method!r}")


def inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + n)
    z = torch.randn(n, DIM, generator=g).requires_grad_(True)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    return z, labels


def step_fn(method: str, form: str, n: int):
    """One forward + backward; returns the loss value of the last call through ``holder``."""
    loss_fn = make_loss(method, form)
    z, labels = inputs(n)
    holder: dict[str, float] = {}

    def run() -> None:
        loss = loss_fn(z, labels)
        loss.backward()
        holder["loss"] = float(loss.detach())
        z.grad = None

    return run, holder


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = common.machine_info()
    print(common.header("B1 metric losses", started), flush=True)
    budget = min(args.max_gb * common.GB, args.mem_fraction * common.mem_available_bytes())
    rows: list[dict[str, Any]] = []
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for n in args.sizes:
        for method, form in CASES:
            if method == "pml" and not _has_pml():
                rows.append({"method": method, "form": form, "n": n, "status": "not installed (pip install -e .[bench])"})
                continue
            row: dict[str, Any] = {"method": method, "form": form, "n": n}
            prev = last.get((method, form))
            if method != "nebula" and prev is not None:
                scale = (n / prev["n"]) ** 3
                row["predicted_peak_bytes"] = prev["tensor_peak_bytes"] * scale
                row["predicted_seconds"] = prev["time"]["median"] * scale
                if row["predicted_peak_bytes"] > budget:
                    row["status"] = (f"not run: needs about {common.fmt_bytes(row['predicted_peak_bytes'])} "
                                     f"(budget {common.fmt_bytes(budget)}), extrapolated N^3 from N={prev['n']}")
                    rows.append(row)
                    print(f"  {method:6s} {form:5s} N={n:5d}  {row['status']}", flush=True)
                    continue
            fn, holder = step_fn(method, form, n)
            row["time"] = common.measure(fn, warmup=args.warmup, repeats=args.repeats, budget_s=args.budget_s)
            row["loss"] = holder["loss"]
            row["tensor_peak_bytes"] = common.tensor_peak_bytes(fn)
            del fn, holder
            probe = common.rss_probe("benchmarks.metric", [method, form, n]) if args.rss else {}
            row["rss_delta_bytes"] = probe.get("rss_delta_bytes")
            if "error" in probe:
                row["rss_error"] = probe["error"]
            row["status"] = "ok"
            last[(method, form)] = row
            rows.append(row)
            print(f"  {method:6s} {form:5s} N={n:5d}  median {common.fmt_seconds(row['time']['median'])}"
                  f"  tensor peak {common.fmt_bytes(row['tensor_peak_bytes'])}"
                  f"  RSS delta {common.fmt_bytes(row['rss_delta_bytes'])}  loss {row['loss']:.6g}", flush=True)
    checks = equality_checks(rows)
    ratios = speed_ratios(rows)
    print(report(rows, checks, ratios))
    payload = {"config": {"dim": DIM, "classes": CLASSES, "margin": MARGIN, "sizes": list(args.sizes),
                          "warmup": args.warmup, "repeats": args.repeats, "memory_budget_bytes": budget,
                          "memory_method": "tensor_peak_bytes: torch.profiler allocation events (live tensor bytes, "
                                           "peak above start); rss_delta_bytes: ru_maxrss delta of one call in a fresh process"},
               "rows": rows, "equality": checks, "ratios": ratios}
    path = common.write_result(args.result_name, payload, started)
    print(f"wrote {path}")
    return payload


def _has_pml() -> bool:
    try:
        import pytorch_metric_learning  # noqa: F401
    except ImportError:
        return False
    return True


def _find(rows: list[dict[str, Any]], method: str, form: str, n: int) -> dict[str, Any] | None:
    for r in rows:
        if (r["method"], r["form"], r["n"]) == (method, form, n):
            return r
    return None


def equality_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Relative difference of each baseline's loss value from nebula's (same z, labels), float32."""
    out = []
    for r in rows:
        if r["method"] == "nebula" or r.get("status") != "ok":
            continue
        ours = _find(rows, "nebula", r["form"], r["n"])
        if ours is None or ours.get("status") != "ok":
            continue
        rel = abs(r["loss"] - ours["loss"]) / max(abs(ours["loss"]), 1e-30)
        out.append({"baseline": r["method"], "form": r["form"], "n": r["n"], "nebula": ours["loss"],
                    "baseline_loss": r["loss"], "relative_difference": rel, "equal_1e-5": rel <= 1e-5})
    return out


def speed_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """baseline / nebula for median time and tensor peak (measured, or predicted where not run)."""
    out = []
    for r in rows:
        if r["method"] == "nebula" or "status" not in r or r["status"].startswith("not installed"):
            continue
        ours = _find(rows, "nebula", r["form"], r["n"])
        if ours is None or ours.get("status") != "ok":
            continue
        measured = r.get("status") == "ok"
        t = r["time"]["median"] if measured else r.get("predicted_seconds")
        m = r["tensor_peak_bytes"] if measured else r.get("predicted_peak_bytes")
        if t is None or m is None:
            continue
        out.append({"baseline": r["method"], "form": r["form"], "n": r["n"], "measured": measured,
                    "time_ratio": t / ours["time"]["median"], "memory_ratio": m / max(ours["tensor_peak_bytes"], 1)})
    return out


def report(rows: list[dict[str, Any]], checks: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> str:
    lines = []
    body = []
    for r in rows:
        if r.get("status") == "ok":
            t = r["time"]
            body.append([r["method"], r["form"], r["n"], common.fmt_seconds(t["median"]),
                         f"{common.fmt_seconds(t['min'])} / {common.fmt_seconds(t['max'])}",
                         common.fmt_bytes(r["tensor_peak_bytes"]), common.fmt_bytes(r.get("rss_delta_bytes")), "measured"])
        elif "predicted_peak_bytes" in r:
            body.append([r["method"], r["form"], r["n"], "~" + common.fmt_seconds(r["predicted_seconds"]), "-",
                         "~" + common.fmt_bytes(r["predicted_peak_bytes"]), "-", "not run (memory), extrapolated"])
        else:
            body.append([r["method"], r["form"], r["n"], "-", "-", "-", "-", r.get("status", "")])
    lines.append(common.table(["system", "form", "N", "fwd+bwd median", "min / max", "tensor peak", "RSS delta", "status"], body))
    if ratios:
        lines.append("")
        lines.append(common.table(
            ["baseline", "form", "N", "time / nebula", "memory / nebula", "baseline"],
            [[r["baseline"], r["form"], r["n"], f"{r['time_ratio']:.1f}x", f"{r['memory_ratio']:.1f}x",
              "measured" if r["measured"] else "extrapolated"] for r in ratios]))
    if checks:
        lines.append("")
        lines.append(common.table(["baseline", "form", "N", "relative difference to nebula", "<= 1e-5"],
                                  [[c["baseline"], c["form"], c["n"], f"{c['relative_difference']:.2e}",
                                    "yes" if c["equal_1e-5"] else "NO"] for c in checks]))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget-s", type=float, default=20.0, help="time budget per case for the measured repeats")
    p.add_argument("--max-gb", type=float, default=4.0, help="never run a case predicted to need more (GB)")
    p.add_argument("--mem-fraction", type=float, default=0.5,
                   help="never run a case predicted to need more than this fraction of the free memory")
    p.add_argument("--result-name", default="metric", help="write benchmarks/results/<name>.json")
    p.add_argument("--no-rss", dest="rss", action="store_false", help="skip the fresh-process RSS probes")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.metric", description=__doc__.splitlines()[0])
    p.add_argument("--probe", nargs=3, metavar=("METHOD", "FORM", "N"), help=argparse.SUPPRESS)
    add_arguments(p)
    args = p.parse_args(argv)
    if args.probe:
        method, form, n = args.probe
        common.probe_main(lambda: step_fn(method, form, int(n))[0])
        return
    run(args)


if __name__ == "__main__":
    main()
