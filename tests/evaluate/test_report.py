"""The single-run report and its figures (issue 17, points 4 and 5): readable without the code."""

from __future__ import annotations

import re
from html import escape as html_escape

import numpy as np
import pytest

from nebula.evaluate import evaluate
from nebula.evaluate.diagnosis import run_warnings
from nebula.evaluate.plots import latent_scatter
from nebula.evaluate.report import caption_for, metric_rows, run_report
from nebula.run import train

from ..reliability.helpers import tiny_config, tiny_images


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    x, y = tiny_images(60)
    np.savez(root / "d.npz", x=x, y=y)
    cfg = tiny_config(root / "tiny-tae", epochs=3)
    cfg.data.source = str(root / "d.npz")
    cfg.loss.metric_order = 0
    cfg.train.figures = True
    train(cfg)
    return root / "tiny-tae"


def test_report_names_metrics_counts_and_captions(run_dir):
    result = evaluate(run_dir)
    html = run_report(run_dir, result).read_text()
    assert "anchor ACC" in html and "cov. off-diag energy" in html and "what it measures" in html
    assert "anchor_acc" not in html and "offdiag_energy" not in html  # raw keys are not shown
    dead = result["anchors"]["dead"]
    assert re.search(rf"<td>dead anchors</td><td>{dead}</td>", html)  # an integer, not 0.000
    assert 'class="wide"' in html  # the training curves span the page
    assert "Per-epoch mean of every logged loss term" in html and "training_curves" not in html.split("<body>")[1].split("<img")[0]
    for stem in ("latent_pca_label", "covariance", "reconstructions", "manifold"):
        assert html_escape(caption_for(stem)[1]) in html


def test_no_manifold_figure_for_dead_anchors(run_dir, tmp_path):
    import shutil

    from nebula.evaluate.plots import run_figures
    from nebula.run import load

    run = load(run_dir)
    run.dataset = run.load_data(run.config.data.source)
    emb = dict(run.embeddings)
    emb["assign"] = np.zeros_like(emb["assign"])  # anchor 0 owns everything: 1 and 2 are dead
    run.embeddings = emb
    out = tmp_path / "figs"
    shutil.copytree(run_dir / "figures", out)
    written = {p.name for p in run_figures(run, out)}
    assert "manifold_0.png" in written and not {"manifold_1.png", "manifold_2.png"} & written
    assert not (out / "manifold_1.png").exists()  # an older drawing of a now dead anchor is removed


def test_warnings_for_dead_dominant_anchors_and_inactive_dimensions():
    result = {"variant": "tvae", "anchors": {"num_anchors": 10, "dead": 9, "usage_fraction": [1.0] + [0.0] * 9},
              "covariance": {"variances": [1.0, 0.5, 1e-5]}, "training": {"epochs": 3}}
    text = " ".join(run_warnings(result))
    assert "9 of 10 anchors own no latent" in text and "anchor 0 owns 100%" in text
    assert "1 of 3 latent dimensions" in text
    assert run_warnings({"variant": "tvae", "anchors": None, "covariance": {"variances": [1.0, 1.0]}})
    healthy = {"variant": "tvae", "anchors": {"num_anchors": 4, "dead": 0, "usage_fraction": [0.25] * 4},
               "covariance": {"variances": [1.0, 0.8]}}
    assert run_warnings(healthy) == []


def test_metric_rows_skip_missing_and_round_counts():
    rows = metric_rows({"anchor_acc": 0.91234, "dead_anchors": 2.0, "knn10": float("nan"), "text.bleu": 12.5})
    assert rows[0][:2] == ["anchor ACC", "0.912"] and ["dead anchors", "2"] == rows[1][:2]
    assert [r[0] for r in rows] == ["anchor ACC", "dead anchors", "text.bleu"]


def test_scatter_legend_has_one_entry_per_class(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    seen = {}
    real_save = plt.Figure.savefig

    def capture(fig, *args, **kwargs):
        legend = fig.axes[0].get_legend()
        seen["labels"] = [t.get_text() for t in legend.get_texts()] if legend else []
        seen["xlabel"] = fig.axes[0].get_xlabel()
        return real_save(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", capture)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(90, 3))
    latent_scatter(z, np.arange(90) % 3, tmp_path / "s.png", "t", anchors=z[:4], legend_title="anchor")
    assert seen["labels"][:3] == ["0", "1", "2"] and "dead anchor (no latents)" in seen["labels"]  # anchor 3 owns none
    assert "of variance" in seen["xlabel"]
    latent_scatter(z, np.arange(90) % 30, tmp_path / "c.png", "t", legend_title="label")  # > 20 classes: a colour bar
    assert len(plt.imread(tmp_path / "c.png")) > 0


def test_compare_tables_show_no_spread_for_one_seed():
    from nebula.experiments.tables import table_cells

    rows = [{"variant": "tvae", "kind": "model", "kmeans_acc": 0.5}, {"variant": "ae", "kind": "model", "kmeans_acc": 0.4},
            {"variant": "ae", "kind": "model", "kmeans_acc": 0.6}]
    _, cells, _ = table_cells(rows, ["kmeans_acc"], lambda s: s)
    assert cells[0][1] == "0.500" and "±" in cells[1][1]
