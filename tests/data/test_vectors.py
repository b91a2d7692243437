"""Pretrained word-vector files (word2vec / GloVe .txt, fastText .vec) on tiny generated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nebula.data import load
from nebula.data.vectors import aligned_vectors, read_vectors
from nebula.errors import DataError

VECS = {"apple": [1.0, 0.0, 0.5], "linux": [0.0, 1.0, -0.5], "Banana": [0.5, 0.5, 0.0]}


def write_vectors(path: Path, header: bool, vecs: dict[str, list[float]] = VECS, dim: int | None = None) -> Path:
    lines = [f"{len(vecs)} {dim or 3}"] if header else []
    lines += [" ".join([w, *(f"{v:g}" for v in vec)]) for w, vec in vecs.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name,header", [("glove.txt", False), ("w2v.txt", True), ("ft.vec", True)])
def test_formats_read_the_same_vectors(tmp_path: Path, name: str, header: bool) -> None:
    found, dim, entries = read_vectors(write_vectors(tmp_path / name, header))
    assert dim == 3 and entries == 3
    assert np.allclose(found["linux"], [0.0, 1.0, -0.5])


def test_aligned_rows_lowercase_fallback_and_pad(tmp_path: Path) -> None:
    path = write_vectors(tmp_path / "v.vec", True)
    tokens = ["<pad>", "<unk>", "<bos>", "<eos>", "apple", "banana", "missing"]
    matrix, facts = aligned_vectors(path, tokens)
    assert matrix.shape == (7, 3) and matrix.dtype == np.float32
    assert np.allclose(matrix[4], VECS["apple"]) and np.allclose(matrix[5], VECS["Banana"])
    assert np.all(matrix[0] == 0) and facts["vectors_coverage"] == pytest.approx(2 / 7)
    assert np.abs(matrix[6]).sum() > 0  # a missing word gets a random row


def test_header_dimension_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"v.vec:2: expected 4 values after the word, found 3"):
        read_vectors(write_vectors(tmp_path / "v.vec", True, dim=4))


def test_line_dimension_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_text("apple 1 2 3\nlinux 1 2\n")
    with pytest.raises(DataError, match=r"g.txt:2: expected 3 values .*dimension mismatch"):
        read_vectors(path)


def test_no_vocabulary_overlap(tmp_path: Path) -> None:
    path = write_vectors(tmp_path / "v.txt", False)
    with pytest.raises(DataError, match="no vocabulary overlap"):
        aligned_vectors(path, ["<pad>", "<unk>", "<bos>", "<eos>", "kernel"])


def test_loader_option_and_encoder_init(tmp_path: Path) -> None:
    from nebula.config import ModelConfig
    from nebula.data.text import configure_text
    from nebula.nn import build_encoder

    data = tmp_path / "s.csv"
    data.write_text("label,text\n" + "\n".join(f"{i % 2},apple linux pie {i}" for i in range(10)) + "\n")
    vec = write_vectors(tmp_path / "v.vec", True)
    ds = load(data, options={"vectors": str(vec)})
    assert ds.meta["vectors"].shape == (ds.meta["vocab_size"], 3) and ds.meta["vectors_dim"] == 3
    paired = load(data, options={"vectors": str(vec), "ngrams": 2})
    tokens = paired.meta["state"]["tokens"]
    pair = paired.meta["state"]["pairs"].index([tokens.index("apple"), tokens.index("linux")]) + len(tokens)
    mean = (np.asarray(VECS["apple"]) + np.asarray(VECS["linux"])) / 2  # a word pair starts from its words' mean
    assert np.allclose(paired.meta["vectors"][pair], mean, atol=1e-6)
    cfg = ModelConfig(feature_dim=8)
    configure_text(cfg, ds.meta)
    enc = build_encoder("bow", ds.x.shape[1:], cfg)
    apple = ds.meta["state"]["tokens"].index("apple")
    row = np.asarray(VECS["apple"]) / np.linalg.norm(VECS["apple"])
    assert enc.bag.weight.shape[1] == 3 and np.allclose(enc.bag.weight[apple].detach().numpy(), row, atol=1e-6)
    assert enc(ds.x[:4]).shape == (4, 8)
    with pytest.raises(DataError, match="vector file not found"):
        load(data, options={"vectors": str(tmp_path / "none.vec")})


def test_rnn_encoder_starts_from_the_vectors(tmp_path: Path) -> None:
    from nebula.config import ModelConfig
    from nebula.data.text import configure_text
    from nebula.nn import build_encoder

    data = tmp_path / "s.csv"
    data.write_text("label,text\n" + "\n".join(f"{i % 2},apple linux {i}" for i in range(8)) + "\n")
    ds = load(data, options={"vectors": str(write_vectors(tmp_path / "v.txt", False))})
    cfg = ModelConfig(feature_dim=8)
    configure_text(cfg, ds.meta)
    enc = build_encoder("gru", ds.x.shape[1:], cfg)
    linux = ds.meta["state"]["tokens"].index("linux")
    assert enc.embedding.weight.shape[1] == 3
    assert np.allclose(enc.embedding.weight[linux].detach().numpy(), VECS["linux"])


@pytest.mark.parametrize("arch,vectors", [("bow", False), ("bow", True), ("gru", True)])
def test_saved_run_rebuilds_the_widths_its_vectors_gave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        arch: str, vectors: bool) -> None:
    """A run folder loads without its data: the LSA (bag) or vector width (bag, RNN) is in its config."""
    from nebula.config import Config
    from nebula.nn import bow
    from nebula.run import load as load_run
    from nebula.run import train

    data = tmp_path / "s.csv"
    data.write_text("label,text\n" + "\n".join(f"{i % 2},apple linux pie {i % 5} w{i}" for i in range(40)) + "\n")
    cfg = Config().apply_variant("vae")
    cfg.data.source = str(data)
    if vectors:
        cfg.data.options["vectors"] = str(write_vectors(tmp_path / "v.txt", False))
    cfg.model.arch, cfg.model.latent_dim, cfg.model.feature_dim = arch, 4, 8
    cfg.model.options.update(bow_hidden=16, embedding_dim=8, rnn_hidden=8, decoder_hidden=8)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.quiet = 1, 16, True
    cfg.output = str(tmp_path / "run")
    run = train(cfg)
    width = 3 if vectors else int(run.config.model.options["lsa_dim"])
    assert width != 512 and width != 8  # not the configured bow_embedding / embedding_dim
    monkeypatch.setattr(bow, "TEXT_INIT", {})  # as in a new process: the data's initial values are gone
    loaded = load_run(tmp_path / "run")
    emb = loaded.model.encoder.bag if arch == "bow" else loaded.model.encoder.embedding
    assert emb.weight.shape[1] == width
    ds = loaded.load_data(data)
    z = loaded.model.embed(ds.x).numpy()
    assert np.allclose(z, run.embeddings["z"], atol=1e-5)
