"""End to end on a tiny generated corpus: training, run folder, text evaluator, renderer, CLI embed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nebula.cli import main
from nebula.config import Config
from nebula.data.tokenize import BOS_ID, WordVocabulary
from nebula.evaluate import evaluate
from nebula.evaluate.plots import renderer_for
from nebula.evaluate.text import TextRenderer, anchor_samples, evaluate_text, render_lines, token_metrics
from nebula.run import load, train

SUBJECTS = {"q": ["what is the", "where is the", "who is the"], "s": ["the cat", "a dog", "my bird"]}


def tiny_corpus(path: Path, n: int = 48) -> Path:
    """Two label kinds: questions vs statements, tab separated (``label<TAB>text``)."""
    rng = np.random.default_rng(0)
    words = ["red", "big", "old", "fast", "small", "green"]
    lines = []
    for i in range(n):
        label = "q" if i % 2 else "s"
        head = SUBJECTS[label][i % 3]
        tail = " ".join(rng.choice(words, size=2))
        lines.append(f"{label}\t{head} {tail} {'?' if label == 'q' else '.'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(data: Path, out: Path, variant: str = "tvae", arch: str = "gru") -> Config:
    cfg = Config()
    cfg.apply_variant(variant)
    cfg.model.arch = arch  # the sequence VAE (the text default is the bag-of-words coder)
    cfg.data.source = str(data)
    cfg.data.test_fraction = 0.25
    cfg.model.latent_dim, cfg.model.num_anchors, cfg.model.feature_dim = 4, 2, 16
    cfg.model.options.update(embedding_dim=16, rnn_hidden=24, decoder_hidden=24, word_dropout=0.2)
    cfg.train.epochs, cfg.train.pretrain_epochs, cfg.train.batch_size, cfg.train.lr = 4, 1, 16, 1e-2
    cfg.train.quiet, cfg.train.device, cfg.train.checkpoint_every = True, "cpu", 100
    cfg.output = str(out)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("text_e2e")
    data = tiny_corpus(root / "corpus.tsv.txt")
    run = train(tiny_config(data, root / "run"))
    return run, data, root


def test_training_writes_run_folder_and_text_figures(trained) -> None:
    run, _, _ = trained
    folder = Path(run.run_dir)
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "complete" and info["modality"] == "text"
    assert info["architecture"] == {"encoder": "gru", "decoder": "gru", "reconstruction": "text_nll"}
    assert info["data_state"]["kind"] == "word"
    saved = Config.from_yaml(folder / "config.yaml")
    assert saved.model.options["vocab_size"] == run.dataset.meta["vocab_size"]
    rows = (folder / "metrics.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    first, last = (dict(zip(header, r.split(","))) for r in (rows[1], rows[-1]))
    assert float(last["rec"]) < float(first["rec"])  # it learns
    assert float(last["kl"]) > 0
    with np.load(folder / "embeddings.npz") as emb:
        assert emb["z"].shape == (48, 4) and emb["anchors"].shape == (2, 4) and np.isfinite(emb["rec"]).all()
    for name in ("reconstructions.png", "manifold.png", "manifold_0.png", "latent_pca_anchor.png"):
        assert (folder / "figures" / name).stat().st_size > 1000


def test_text_evaluator_metrics_and_files(trained) -> None:
    run, _, _ = trained
    # the generic evaluation runs the text evaluator for text runs
    result = evaluate(Path(run.run_dir), run=run, dataset=run.dataset, kmeans_init=2)
    assert result["probes"]["test_samples"] == 12
    metrics = result["plugins"]["text"]
    assert 0 < metrics["text_nll_per_token"] < np.log(run.dataset.meta["vocab_size"]) + 1
    assert metrics["text_perplexity"] == pytest.approx(np.exp(metrics["text_nll_per_token"]))
    assert metrics["text_elbo_nll_per_token"] >= metrics["text_nll_per_token"] - 0.5
    assert 0 <= metrics["text_token_accuracy"] <= 1 and 0 <= metrics["text_exact_match"] <= 1
    folder = Path(run.run_dir)
    samples = (folder / "text_samples.txt").read_text()
    assert samples.count("anchor ") == 2
    assert (folder / "text_interpolations.txt").read_text().count("from: ") == 4
    assert (folder / "figures" / "text_samples.png").stat().st_size > 1000
    assert metrics["text_files"] == ["text_samples.txt", "text_interpolations.txt", "text_reconstructions.txt"]


def test_token_metrics_count_a_perfect_model() -> None:
    class Echo(torch.nn.Module):
        """A 'model' whose decoder returns the input as one-hot logits: accuracy 1, NLL ~ 0."""

        reconstruction = __import__("nebula.losses", fromlist=["get_reconstruction"]).get_reconstruction("token_ce")

        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))
            self.x = None

        def encode(self, x):
            self.x = x
            return x.float(), x.float(), None

        def decode(self, z, target=None):
            return torch.nn.functional.one_hot(z.long(), 10).float() * 50

        def to_data(self, out):
            return out.argmax(-1)

    x = torch.tensor([[BOS_ID, 5, 6, 3, 0], [BOS_ID, 7, 3, 0, 0]])
    m = token_metrics(Echo(), x)
    assert m["text_token_accuracy"] == 1.0 and m["text_exact_match"] == 1.0 and m["text_scored_tokens"] == 5
    assert m["text_nll_per_token"] < 1e-6


def test_embed_reuses_the_run_vocabulary(trained, tmp_path: Path) -> None:
    run, _, root = trained
    new = tmp_path / "new.txt"
    new.write_text("what is the red cat ?\nzebras unknown words here\n")
    out = tmp_path / "emb.npz"
    assert main(["embed", str(run.run_dir), "--data", str(new), "--out", str(out), "--device", "cpu"]) == 0
    with np.load(out) as emb:
        assert emb["z"].shape == (2, 4)
    loaded = load(run.run_dir)
    ds = loaded.load_data(new)
    vocab = WordVocabulary(run.info["data_state"]["tokens"])
    assert ds.x.shape[1] == run.dataset.x.shape[1] and ds.x[1, 1].item() == vocab.stoi.get("zebras", 1) == 1


def test_cli_train_text(tmp_path: Path) -> None:
    data = tiny_corpus(tmp_path / "c.txt", 24)
    code = main(["train", "--modality", "text", "--data", str(data), "--variant", "vae", "--epochs", "1",
                 "--latent-dim", "3", "--batch-size", "8", "--device", "cpu", "--quiet", "-o", str(tmp_path / "r"),
                 "--set", "model.options.rnn_hidden=8", "--set", "model.options.decoder_hidden=8",
                 "--set", "model.options.embedding_dim=8", "--set", "train.figures=false"])
    assert code == 0 and (tmp_path / "r" / "embeddings.npz").exists()


def test_renderer_lines_and_binding(tmp_path: Path, trained) -> None:
    vocab = WordVocabulary.fit(["a b c"])
    grid = np.array([[[2, 4, 5, 3], [2, 6, 3, 0]], [[2, 4, 3, 0], [2, 1, 3, 0]]])
    lines = TextRenderer(vocab).lines(grid)
    assert lines[:2] == ["[0.0] a b", "[0.1] a"]  # input above its reconstruction
    assert TextRenderer().lines(grid)[0] == "[0.0] 2 4 5 3"
    TextRenderer(vocab)(grid, tmp_path / "g.png", "title")
    assert (tmp_path / "g.png").stat().st_size > 500
    bound = renderer_for("text").for_run(trained[0])
    assert bound.tokenizer is not None and bound.tokenizer.vocab_size == trained[0].dataset.meta["vocab_size"]
    render_lines([], tmp_path / "empty.png")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10, 3)).astype(np.float32)
    assert anchor_samples(z, np.zeros(10, int), z[:2], 4, rng).shape == (2, 4, 3)
    assert anchor_samples(z, np.full(10, -1), np.zeros((0, 3)), 4, rng).shape == (1, 4, 3)


def test_bow_default_trains_and_lists_anchor_words(tmp_path: Path) -> None:
    data = tiny_corpus(tmp_path / "corpus.tsv.txt")
    cfg = tiny_config(data, tmp_path / "run", arch="auto")
    run = train(cfg)
    info = json.loads((Path(run.run_dir) / "run.json").read_text())
    assert info["architecture"] == {"encoder": "bow", "decoder": "bow", "reconstruction": "text_nll"}
    metrics = evaluate_text(run, run.dataset)
    assert np.isfinite(metrics["text_perplexity"]) and "text_token_accuracy" not in metrics
    samples = (Path(run.run_dir) / "text_samples.txt").read_text()
    assert samples.startswith("anchor 0") and "<unk>" not in samples.splitlines()[1]


def test_text_config_defaults_are_recorded(tmp_path: Path) -> None:
    data = tiny_corpus(tmp_path / "corpus.tsv.txt")
    cfg = tiny_config(data, tmp_path / "run", arch="auto")
    cfg.model.latent_dim = Config().model.latent_dim  # the generic default: the text modality's 64 applies
    run = train(cfg)
    saved = Config.from_yaml(Path(run.run_dir) / "config.yaml")
    assert saved.model.latent_dim == 64 and saved.loss.anchor_weight == 0.1
    assert run.embeddings["z"].shape[1] == 64
