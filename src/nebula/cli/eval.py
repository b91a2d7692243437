"""``nebula eval``: evaluate a finished run from its saved files (eval.json, figures, report.html)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nebula.cli.command import command


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--no-figures", action="store_true", help="write eval.json only (no figures, no report.html)")
    p.add_argument("--tsne", action="store_true", help="also draw t-SNE latent scatter plots")
    p.add_argument("--no-data", action="store_true",
                   help="draw only figures from saved files (skip reconstructions/manifolds, which read the data)")


@command("eval", "evaluate a finished run from its saved files: eval.json, figures and report.html", _eval_arguments)
def cmd_eval(args: argparse.Namespace) -> int:
    from nebula.evaluate import evaluate

    result = evaluate(args.run)
    s = result["summary"]
    lines = [f"eval.json: {Path(args.run) / 'eval.json'}"]
    for part, name in (("anchor", "nearest anchor"), ("kmeans", "k-means on latents")):
        if s.get(f"{part}_acc") is not None:
            lines.append(f"  {name:20s} ACC {s[f'{part}_acc']:.4f}  purity {s[f'{part}_purity']:.4f}  "
                         f"NMI {s[f'{part}_nmi']:.4f}  ARI {s[f'{part}_ari']:.4f}  AMI {s[f'{part}_ami']:.4f}")
    if s.get("knn10") is not None:
        lines.append(f"  probes (split 0 -> 1)  kNN-10 cos {s['knn10']:.4f}  kNN-1 cos {s['knn1']:.4f}  "
                     f"linear {s['linear_probe']:.4f}")
    if s.get("rec_test") is not None:
        lines.append(f"  test reconstruction loss ({result['reconstruction']['loss']}) {s['rec_test']:.4f}")
    if result.get("anchors"):
        a = result["anchors"]
        lines.append(f"  anchors: {a['used']} used, {a['dead']} dead, min distance {a['min_distance']:.3f}, "
                     f"RMS spread {a['mean_spread']:.3f}")
    lines.append(f"  latent covariance off-diagonal energy {s['offdiag_energy']:.3f}")
    for name, values in (result.get("plugins") or {}).items():
        if values:  # an evaluator with nothing to say for this run prints nothing
            lines.append(f"  {name}: {json.dumps(values)[:200]}")
    if not args.no_figures:
        from nebula.evaluate.report import run_report

        lines.append(f"report: {run_report(args.run, result, tsne=args.tsne, data_figures=not args.no_data)}")
    print("\n".join(lines))
    return 0
