"""The translation method end to end: a copy task learnt exactly, nebula translate, evaluation, variants."""

from __future__ import annotations

import gzip
import json

import pytest

from nebula.cli import main
from nebula.data.parallel import read_corpus
from nebula.errors import ConfigError
from nebula.evaluate import evaluate
from nebula.run import train
from nebula.translation.api import translate
from tests.translation.helpers import copy_corpus, tiny_config


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory, one_thread):  # noqa: ARG001 - one_thread first
    root = tmp_path_factory.mktemp("tr")
    data = copy_corpus(root / "data")
    run = train(tiny_config(data, root / "run", epochs=40))
    return run, data


def test_copy_task_is_learnt_to_exact_match(copy_run):
    run, data = copy_run
    corpus = read_corpus(data, "src", "tgt")
    test = [i for i, s in enumerate(corpus.split) if s == 1]
    sources, refs = [corpus.src[i] for i in test], [corpus.tgt[i] for i in test]
    assert translate(run, sources, beam=1) == refs
    assert translate(run, sources, beam=3) == refs


def test_nebula_translate_end_to_end(copy_run, tmp_path, capsys):
    run, data = copy_run
    src = tmp_path / "in.txt.gz"
    src.write_bytes(gzip.compress(b"anna bert\ncarl dora emil\n"))
    out = tmp_path / "out.txt"
    assert main(["translate", str(run.run_dir), "--input", str(src), "--out", str(out), "--beam", "2"]) == 0
    assert out.read_text().splitlines() == ["ANNA BERT", "CARL DORA EMIL"]
    assert main(["translate", str(run.run_dir), "--input", str(tmp_path / "missing.txt"), "--out", "-"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*tmp"))


def test_evaluation_writes_bleu_and_chrf(copy_run):
    run, _ = copy_run
    result = evaluate(run.run_dir)
    plugin = result["plugins"]["translation"]
    assert plugin["bleu"] > 99 and plugin["chrf"] > 99 and plugin["test_sentences"] == 20
    saved = json.loads((run.run_dir / "eval.json").read_text())
    assert saved["summary"]["translation.bleu"] == pytest.approx(plugin["bleu"])
    assert (run.run_dir / "translations_test.txt").read_text().count("\n") == 20


def test_nvc_ml_variant_reports_anchors(tmp_path):
    data = copy_corpus(tmp_path / "data", train=120, test=8)
    cfg = tiny_config(data, tmp_path / "run", epochs=2, train__pretrain_epochs=1)
    cfg.apply_variant("nvc-ml")
    cfg.model.num_anchors = 3
    run = train(cfg)
    assert run.info["variant"] == "nvc-ml"
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert "near" in rows[0] and "metric" in rows[0] and "kl" in rows[0]
    plugin = evaluate(run.run_dir)["plugins"]["translation"]
    assert len(plugin["anchor_usage"]) == 3 and sum(plugin["anchor_usage"]) == 8
    assert len(plugin["anchor_samples"]["by_anchor"]) == 3 and len(plugin["interpolation"]["steps"]) == 5
    assert 0.0 <= plugin["latent_effect"] <= 1.0


def test_translation_refuses_other_data_and_bad_options(tmp_path):
    cfg = tiny_config(tmp_path, None)
    cfg.data.source, cfg.data.options = "digits", {}
    with pytest.raises(ConfigError, match="needs translation data"):
        train(cfg)
    data = copy_corpus(tmp_path / "data", train=20, test=4)
    with pytest.raises(ConfigError, match="translation.condition"):
        train(tiny_config(data, None, translation__condition="everywhere"))
