"""nebula compare / eval end to end on a tiny generated dataset, and the table logic."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from nebula.cli import main
from nebula.errors import ConfigError
from nebula.experiments.grid import compare, parse_list
from nebula.experiments.tables import acceptance_summary, aggregate, read_results_csv, table_cells
from tests.evaluate.helpers import check_self_contained_html

TINY = ["--set", "model.hidden=[32]", "--set", "model.feature_dim=16", "--set", "train.pretrain_epochs=1",
        "--set", "train.batch_size=16", "--latent-dim", "4", "--anchors", "3", "--epochs", "2", "--device", "cpu",
        "--threads", "1"]


def test_compare_end_to_end(tmp_path, tiny_npz, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--data", str(tiny_npz), "--variants", "ae,tvae", "--seeds", "0,1",
                 "-o", str(out), *TINY])
    assert code == 0
    printed = capsys.readouterr().out
    assert "[1/4] tvae" in printed and "[4/4] ae" in printed and "report:" in printed  # anchored runs first
    rows = list(csv.DictReader(open(out / "results.csv")))
    models = [r for r in rows if r["kind"] == "model"]
    assert [(r["variant"], r["seed"]) for r in models] == [(v, s) for v in ("ae", "tvae") for s in "01"]
    assert not list(out.glob(".maps-*"))  # the shared t-SNE maps are removed
    assert {r["variant"] for r in rows if r["kind"] == "baseline"} == {"baseline: raw input", "baseline: PCA-4 of input"}
    for r in models:
        assert 0 < float(r["kmeans_acc"]) <= 1 and 0 <= float(r["knn10"]) <= 1
        assert (r["anchor_acc"] == "") == (r["variant"] == "ae")
        run_dir = out / "runs" / f"{r['variant']}-seed{r['seed']}"
        saved = json.loads((run_dir / "eval.json").read_text())
        assert saved["summary"]["kmeans_acc"] == pytest.approx(float(r["kmeans_acc"]), rel=1e-5)
        assert saved["training"]["epochs"] == 2
    # identical architecture and budget: only the variant flags differ between run configs
    import yaml

    cfgs = {v: yaml.safe_load((out / "runs" / f"{v}-seed0" / "config.yaml").read_text()) for v in ("ae", "tvae")}
    for c in cfgs.values():
        c["model"].pop("variational"), c["model"].pop("use_anchors"), c["loss"].pop("metric_order"), c.pop("output")
    assert cfgs["ae"] == cfgs["tvae"]
    md = (out / "results.md").read_text()
    assert "| ae |" in md and "**" in md and "±" in md and "Machine:" in md and "nebula compare" in md
    images = check_self_contained_html(out / "report.html")
    html_text = (out / "report.html").read_text()
    assert "baseline: raw input" in html_text and "<b>" in html_text
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"covariance.png", "training_curves.png", "anchor_usage.png", "reconstructions.png",
            "manifold_tvae.png", "manifold_ae.png", "scatter_pca_ae_label.png", "scatter_pca_tvae_anchor.png"} <= figures
    assert len(images) == len(figures)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["acceptance"]["anchor_acc"]) == {"tvae"} and "passes" in summary["acceptance"]

    # nebula eval on one of the runs: eval.json, figures and a self-contained run report
    assert main(["eval", str(out / "runs" / "tvae-seed0")]) == 0
    printed = capsys.readouterr().out
    assert "nearest anchor" in printed and "report:" in printed
    check_self_contained_html(out / "runs" / "tvae-seed0" / "report.html")
    assert (out / "runs" / "tvae-seed0" / "figures" / "reconstructions.png").exists()

    # finished runs are not overwritten silently
    assert main(["compare", "--data", str(tiny_npz), "--variants", "ae", "--seeds", "0", "-o", str(out), *TINY]) == 2


@pytest.mark.slow
def test_compare_results_do_not_depend_on_worker_processes(tmp_path, tiny_npz):
    args = ["compare", "--data", str(tiny_npz), "--variants", "ae,tvae", "--seeds", "0,1", *TINY]
    assert main([*args, "-o", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main([*args, "-o", str(tmp_path / "two"), "--jobs", "2", "--tsne"]) == 0
    assert (tmp_path / "two" / "figures" / "scatter_tsne_tvae_label.png").exists()
    check_self_contained_html(tmp_path / "two" / "report.html")
    keys = ("variant", "seed", "anchor_acc", "kmeans_acc", "rec_test", "knn10", "linear_probe")
    one = [{k: r[k] for k in keys} for r in csv.DictReader(open(tmp_path / "one" / "results.csv"))]
    two = [{k: r[k] for k in keys} for r in csv.DictReader(open(tmp_path / "two" / "results.csv"))]
    assert one == two
    assert not list((tmp_path / "two").glob(".maps-*"))


def test_compare_rejects_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="variant"):
        compare("digits", variants=["ae", "nope"], seeds=[0], out=tmp_path)
    with pytest.raises(ConfigError, match="seeds"):
        parse_list("0,x", int, "seeds")
    assert main(["compare", "--data", "digits", "--variants", "ae", "--seeds", "0", "-o", str(tmp_path),
                 "--set", "train.nope=1"]) == 2


def _rows():
    rows = []
    for s, (a, b) in enumerate([(0.9, 0.5), (0.7, 0.7)]):
        rows.append({"variant": "tvae", "kind": "model", "seed": s, "anchor_acc": a, "kmeans_acc": b, "rec_test": 10.0 + s})
        rows.append({"variant": "ae", "kind": "model", "seed": s, "anchor_acc": float("nan"), "kmeans_acc": 0.6, "rec_test": 5.0})
        rows.append({"variant": "baseline: raw input", "kind": "baseline", "seed": s, "kmeans_acc": 0.79})
    return rows


def test_aggregate_bold_and_acceptance():
    rows = _rows()
    agg = {name: st for name, _, st in aggregate(rows)}
    mean, std, n = agg["tvae"]["anchor_acc"]
    assert mean == pytest.approx(0.8) and std == pytest.approx(np.std([0.9, 0.7], ddof=1)) and n == 2
    assert "anchor_acc" not in agg["ae"]
    header, cells, kinds = table_cells(rows, ["anchor_acc", "kmeans_acc", "rec_test"], lambda t: f"**{t}**")
    assert header == ["variant", "anchor ACC", "k-means ACC", "test rec. loss"]
    table = {c[0]: c[1:] for c in cells}
    assert table["baseline: raw input"][1].startswith("**0.790")  # higher is better
    assert table["ae"][2].startswith("**5.00")  # lower reconstruction loss is better
    assert table["ae"][0] == "-" and kinds == ["model", "model", "baseline"]
    acc = acceptance_summary(rows)
    assert acc["best"] == "tvae" and acc["passes"] is True
    rows[0]["anchor_acc"] = 0.7  # tvae mean 0.7 < raw k-means 0.79
    assert acceptance_summary(rows)["passes"] is False


def test_results_csv_round_trip(tmp_path):
    from nebula.experiments.tables import write_results_csv

    path = write_results_csv(tmp_path / "r.csv", _rows())
    back = read_results_csv(path)
    assert back[0]["anchor_acc"] == pytest.approx(0.9) and math.isnan(back[1]["anchor_acc"])
