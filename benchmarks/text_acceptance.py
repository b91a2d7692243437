"""Acceptance measurements of the text modality (issue 5), on the real data in ../shared/data.

Runs ``nebula compare`` (one architecture and budget per dataset, same split and seeds) and prints what
it measured, read back from the saved results (``results.csv`` / each run's ``metrics.csv``):

1. TREC (official 5,452 / 500 split, 6 coarse classes), configs/text-trec.yaml, variants vae, tvae,
   nvc-ml: tvae linear probe on the 500 test questions (target >= 0.65); nearest-anchor NMI of tvae and
   nvc-ml vs k-means (k = 6) NMI on the vae latents (target: above); training seconds (target < 600).
2. SMS Spam (seeded stratified 80/20), configs/text-sms.yaml, tvae: linear probe (target >= 0.95).
3. TREC mean KL per sample at the last epoch (metrics.csv ``kl``, target > 1 nat).

Usage (about 35 min on a shared 2-core CPU)::

    OMP_NUM_THREADS=1 python benchmarks/text_acceptance.py --out runs/text-acceptance
    python benchmarks/text_acceptance.py --only sms --out runs/text-acceptance      # one part
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def final_kl(run_dir: Path) -> float:
    rows = read_rows(run_dir / "metrics.csv")
    return float(rows[-1]["kl"])


def run_compare(name: str, data: Path, config: Path, variants: list[str], out: Path, seeds: list[int],
                epochs: int | None, overwrite: bool) -> list[dict[str, str]]:
    from nebula.experiments.grid import compare

    result = compare(str(data), variants, seeds, out / name, config=str(config), epochs=epochs, threads=1,
                     overwrite=overwrite, command=" ".join(sys.argv))
    return [r for r in read_rows(result.results_csv) if r["kind"] == "model"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/text-acceptance")
    p.add_argument("--only", choices=["trec", "sms"], help="run one dataset only")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, help="override train.epochs (default: the configs')")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    report: dict[str, object] = {}
    if args.only in (None, "trec"):
        rows = run_compare("trec", DATA / "trec", ROOT / "configs" / "text-trec.yaml", ["tvae", "vae", "nvc-ml"],
                           out, seeds, args.epochs, args.overwrite)
        by = {(r["variant"], int(r["seed"])): r for r in rows}
        for s in seeds:
            vae, tvae, ml = by[("vae", s)], by[("tvae", s)], by[("nvc-ml", s)]
            kl = final_kl(out / "trec" / "runs" / f"tvae-seed{s}")
            item = {
                "tvae_linear_probe": float(tvae["linear_probe"]),
                "vae_linear_probe": float(vae["linear_probe"]),
                "nvc-ml_linear_probe": float(ml["linear_probe"]),
                "tvae_anchor_nmi": float(tvae["anchor_nmi"]),
                "nvc-ml_anchor_nmi": float(ml["anchor_nmi"]),
                "vae_kmeans_nmi": float(vae["kmeans_nmi"]),
                "train_seconds": {v: float(by[(v, s)]["train_seconds"]) for v in ("vae", "tvae", "nvc-ml")},
                "tvae_final_kl": kl,
                "vae_final_kl": final_kl(out / "trec" / "runs" / f"vae-seed{s}"),
            }
            item["pass_probe"] = item["tvae_linear_probe"] >= 0.65
            item["pass_nmi"] = max(item["tvae_anchor_nmi"], item["nvc-ml_anchor_nmi"]) > item["vae_kmeans_nmi"]
            item["pass_time"] = max(item["train_seconds"].values()) < 600
            item["pass_kl"] = kl > 1.0
            report[f"trec_seed{s}"] = item
    if args.only in (None, "sms"):
        rows = run_compare("sms", DATA / "sms_spam" / "SMSSpamCollection", ROOT / "configs" / "text-sms.yaml",
                           ["tvae"], out, seeds, args.epochs, args.overwrite)
        for r in rows:
            probe = float(r["linear_probe"])
            report[f"sms_seed{r['seed']}"] = {"tvae_linear_probe": probe, "train_seconds": float(r["train_seconds"]),
                                              "pass_probe": probe >= 0.95}
    print(json.dumps(report, indent=1))
    (out / "acceptance.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "acceptance.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
