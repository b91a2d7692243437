"""evaluate(run_dir) from saved files only, eval.json, and the single-run report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nebula.errors import NebulaError
from nebula.evaluate import evaluate, read_metrics_csv
from nebula.evaluate.registry import register_evaluator
from nebula.evaluate.report import run_report
from tests.evaluate.helpers import check_self_contained_html, fake_run


def test_evaluate_reads_saved_files_and_writes_strict_json(tmp_path):
    emb = fake_run(tmp_path / "run")
    r = evaluate(tmp_path / "run", plugins=False)
    assert r["clustering"]["anchor"]["accuracy"] == 1.0  # assignment is a permutation of the labels
    assert r["clustering"]["kmeans"]["accuracy"] == 1.0 and r["clustering"]["kmeans"]["n_init"] >= 10
    assert r["probes"]["knn10"] == 1.0 and r["probes"]["test_samples"] == 22
    rec, split = emb["rec"], emb["split"]
    assert r["reconstruction"]["test_mean"] == pytest.approx(rec[split == 1].mean())
    assert r["reconstruction"]["train_mean"] == pytest.approx(rec[split == 0].mean())
    assert r["anchors"]["usage"] == [30, 30, 30] and r["anchors"]["dead"] == 0
    assert np.allclose(r["covariance"]["matrix"], np.cov(emb["z"].astype(np.float64), rowvar=False))
    assert r["training"]["epochs"] == 6 and r["training"]["final"]["near"] == pytest.approx(1 / 6)
    assert set(r["training"]["terms"]) == {"rec", "kl", "loss", "near"}
    assert r["summary"]["anchor_acc"] == 1.0 and r["summary"]["train_seconds"] == 1.5
    saved = json.loads((tmp_path / "run" / "eval.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert saved["summary"] == r["summary"]


def test_evaluate_without_anchors_and_without_labels(tmp_path):
    fake_run(tmp_path / "vae", with_anchors=False)
    r = evaluate(tmp_path / "vae", plugins=False)
    assert r["clustering"]["anchor"] is None and r["anchors"] is None
    assert r["summary"]["anchor_acc"] is None and r["summary"]["kmeans_acc"] == 1.0
    path = tmp_path / "vae" / "embeddings.npz"
    with np.load(path) as f:
        emb = {k: f[k] for k in f.files}
    emb["y"] = np.full(90, -1)
    np.savez(path, **emb)
    r = evaluate(tmp_path / "vae", plugins=False)
    assert r["clustering"]["kmeans"] is None and r["probes"] is None
    assert r["covariance"]["off_diagonal_energy_ratio"] is not None


def test_evaluate_errors_name_the_missing_file(tmp_path):
    with pytest.raises(NebulaError, match="config.yaml"):
        evaluate(tmp_path)
    fake_run(tmp_path / "run")
    (tmp_path / "run" / "embeddings.npz").unlink()
    with pytest.raises(NebulaError, match="embeddings.npz"):
        evaluate(tmp_path / "run")


def test_registered_evaluator_results_are_merged(tmp_path, monkeypatch):
    from nebula.evaluate import registry

    fake_run(tmp_path / "run")
    registry.evaluators_for("image")  # import the built-in plug-ins, then hide them
    monkeypatch.setattr(registry.EVALUATORS, "_entries", {})
    seen = {}

    @register_evaluator("test_plugin", modalities=("image",))
    def plugin(run, dataset):
        seen["args"] = (run, dataset)
        return {"score": 0.25, "note": "text"}

    @register_evaluator("points_only", modalities=("points",))
    def other(run, dataset):
        raise AssertionError("called for the wrong modality")

    r = evaluate(tmp_path / "run", run="RUN", dataset="DATA")
    assert seen["args"] == ("RUN", "DATA")
    assert r["plugins"]["test_plugin"] == {"score": 0.25, "note": "text"}
    assert r["summary"]["test_plugin.score"] == 0.25


def test_read_metrics_csv_blank_is_nan(tmp_path):
    fake_run(tmp_path / "run")
    h = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert np.isnan(h["near"][:2]).all() and h["rec"][0] == 9.0
    assert read_metrics_csv(tmp_path / "missing.csv") == {}


def test_run_report_is_self_contained_html(tmp_path):
    fake_run(tmp_path / "run")
    result = evaluate(tmp_path / "run", plugins=False)
    path = run_report(tmp_path / "run", result, data_figures=False)
    images = check_self_contained_html(path)
    pngs = sorted((tmp_path / "run" / "figures").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"latent_pca_label.png", "latent_pca_anchor.png", "covariance.png", "training_curves.png",
            "anchor_usage.png"} <= names
    assert len(images) == len(pngs)  # every figure embedded
