"""Text loaders on generated files: TREC, label<TAB>text, CSV/TSV, plain lines; encodings; vocabulary state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nebula.config import ModelConfig
from nebula.data import detect_format, load
from nebula.data.text import configure_text, detect_header
from nebula.data.tokenize import tokenizer_from_state
from nebula.errors import DataError
from nebula.modalities import resolve_architecture
from tests.conftest import shared_dataset

TREC_LINES = ["DESC:manner How did serfdom develop in Russia ?", "ENTY:cremat What films featured Popeye Doyle ?",
              "HUM:ind Who was Pélé ?", "LOC:city What is the capital of France ?", "NUM:date When did the war end ?",
              "DESC:def What is a caféteria ?", "HUM:gr What team won the cup ?", "LOC:country Where is Bordeaux ?"]


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_trec_file_latin1_coarse_and_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "questions.label", TREC_LINES, "latin-1")
    assert detect_format(path).name == "trec"
    ds = load(path, test_fraction=0.25, split_seed=1)
    assert ds.modality == "text" and ds.x.dtype == torch.int64 and ds.x.shape[0] == 8
    assert ds.meta["class_names"] == ["DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert ds.y.tolist() == [0, 1, 2, 3, 4, 0, 2, 3]
    assert (ds.split == 1).sum() == 2 and ds.meta["split_kind"].startswith("stratified")
    tok = tokenizer_from_state(ds.meta["state"])
    assert {"pélé", "caféteria"} & set(tok.stoi)  # latin-1 decoded correctly (é kept)
    fine = load(path, options={"labels": "fine"})
    assert fine.meta["class_names"][0] == "DESC:def" and fine.num_classes == 8
    with pytest.raises(DataError, match="coarse or fine"):
        load(path, options={"labels": "medium"})


def test_trec_folder_has_official_split(tmp_path: Path) -> None:
    write(tmp_path / "TREC.train", TREC_LINES[:6], "latin-1")
    write(tmp_path / "TREC.test", TREC_LINES[6:], "latin-1")
    ds = load(tmp_path)
    assert ds.meta["format"] == "trec" and ds.meta["split_kind"] == "official"
    assert ds.split.tolist() == [0] * 6 + [1] * 2
    # the vocabulary is fitted on the training split only: test-only words are <unk>
    vocab = tokenizer_from_state(ds.meta["state"])
    assert "bordeaux" not in vocab.stoi and "serfdom" in vocab.stoi
    assert ds.meta["unk_rate_test"] > 0 and ds.meta["unk_rate_train"] == 0


def test_encoding_errors_are_clear(tmp_path: Path) -> None:
    path = write(tmp_path / "sms.txt", ["ham\tfine", "spam\tWin a caf\xe9 voucher"], "latin-1")
    with pytest.raises(DataError, match=r"sms.txt:2: not valid utf-8.*encoding=latin-1"):
        load(path)
    assert load(path, options={"encoding": "latin-1"}).num_classes == 2
    with pytest.raises(DataError, match="unsupported encoding 'cp1252'"):
        load(path, options={"encoding": "cp1252"})


def test_label_tab_utf8(tmp_path: Path) -> None:
    lines = [f"{'spam' if i % 4 == 0 else 'ham'}\tmessage number {i} – ünïcode ok" for i in range(20)]
    path = write(tmp_path / "SMSCollection", lines)
    assert detect_format(path).name == "label-tab"
    ds = load(path, test_fraction=0.2, split_seed=3)
    assert ds.meta["class_names"] == ["ham", "spam"] and np.bincount(ds.y).tolist() == [15, 5]
    assert np.bincount(ds.y[ds.split == 1]).tolist() == [3, 1]  # stratified
    assert "ünïcode" in tokenizer_from_state(ds.meta["state"]).decode(ds.x[:1])[0]


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_with_header_any_column_order(tmp_path: Path, suffix: str, sep: str) -> None:
    rows = ["text" + sep + "label"] + [f'"hello, world {i}"{sep}{i % 3}' if sep == "," else f"hello world {i}{sep}{i % 3}"
                                       for i in range(12)]
    path = write(tmp_path / f"data{suffix}", rows)
    ds = load(path)
    assert ds.meta["header"] is True and len(ds) == 12 and ds.y.tolist() == [i % 3 for i in range(12)]
    tok = tokenizer_from_state(ds.meta["state"])
    assert tok.decode(ds.x[:1])[0].startswith("hello")


def test_delimited_without_header_and_unlabelled(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.csv", [f"{'pos' if i % 2 else 'neg'},sentence {i}" for i in range(10)])
    ds = load(path)
    assert ds.meta["header"] is False and ds.meta["class_names"] == ["neg", "pos"] and len(ds) == 10
    single = load(write(tmp_path / "one.csv", ["sentence"] + [f"text {i}" for i in range(6)]), options={"header": True})
    assert single.y is None and len(single) == 6
    assert detect_header([["label", "text"], ["a", "x"]])
    assert not detect_header([["a", "x"], ["b", "y"], ["a", "z"], ["b", "w"]])
    assert detect_header([["sentiment", "review"], ["a", "x"], ["b", "y"], ["a", "z"], ["b", "w"]])
    with pytest.raises(DataError, match="no column named 'body'"):
        load(path, options={"header": True, "text_column": "body"})


def test_plain_lines_unlabelled(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.txt", ["the cat sat", "", "a dog ran far away", "birds fly"])
    assert detect_format(path).name == "lines"
    ds = load(path, options={"max_length": 6, "min_freq": 1})
    assert ds.y is None and ds.x.shape == (3, 6) and ds.meta["truncated"] == 1  # 5 words > 6 - 2
    assert ds.meta["max_length"] == 6


def test_state_reuses_vocabulary_and_length(tmp_path: Path) -> None:
    train = load(write(tmp_path / "a.txt", ["alpha beta gamma", "beta gamma delta", "gamma"]), test_fraction=0.3)
    state = train.meta["state"]
    other = load(write(tmp_path / "b.txt", ["gamma epsilon", "beta"]), options={"state": state})
    assert other.x.shape[1] == train.x.shape[1] and other.meta["vocab_size"] == train.meta["vocab_size"]
    vocab = tokenizer_from_state(state)
    assert other.x[0, 1].item() == vocab.stoi.get("gamma", 1)
    with pytest.raises(DataError, match="differs from the saved"):
        load(tmp_path / "b.txt", options={"state": state, "max_length": 99})
    with pytest.raises(DataError, match="does not take option"):
        load(tmp_path / "b.txt", options={"colour": "red"})
    with pytest.raises(DataError, match=r"'lines' does not take option\(s\) \['labels'\]"):
        load(tmp_path / "b.txt", options={"labels": "fine"})
    # reading through a run (state given), another text format's options (TREC labels) are ignored
    assert len(load(tmp_path / "b.txt", options={"state": state, "labels": "coarse"})) == 2


def test_subword_option(tmp_path: Path) -> None:
    ds = load(write(tmp_path / "c.txt", [f"unbelievable things happen {i}" for i in range(30)]),
              options={"tokenizer": "subword", "max_vocab": 60, "min_freq": 1})
    assert ds.meta["tokenizer"] == "subword" and ds.meta["vocab_size"] <= 60


def test_word_pairs_option_feeds_the_bag_not_the_sequence(tmp_path: Path) -> None:
    from nebula.losses.bow import bow_nll
    from nebula.nn.bow import tfidf_weights

    lines = [f"how many {w} are there" for w in ("dogs", "cats", "cows", "owls", "bees", "ants")]
    words = load(write(tmp_path / "p.txt", lines), test_fraction=0.3)
    ds = load(tmp_path / "p.txt", test_fraction=0.3, options={"ngrams": 2})
    vocab = tokenizer_from_state(ds.meta["state"])
    assert vocab.num_words == words.meta["vocab_size"] and ds.meta["vocab_size"] > vocab.num_words
    assert "how many" in vocab.itos and ds.x.shape[1] > words.x.shape[1]  # L counts words and pairs
    assert ds.meta["doc_freq"][vocab.itos.index("how many")] == ds.meta["num_train_docs"]
    pair_slots = ds.x >= vocab.num_words
    assert pair_slots.any() and vocab.decode(ds.x) == words_decoded(words)
    # the bag weighs the pair tokens; the bag NLL scores them
    assert (tfidf_weights(ds.x, torch.ones(ds.meta["vocab_size"]))[pair_slots] > 0).all()
    logits = torch.zeros(len(ds), ds.meta["vocab_size"])
    scored = (ds.x[:, 1:] != 0).sum(1).float()
    torch.testing.assert_close(bow_nll(logits, ds.x), scored * np.log(ds.meta["vocab_size"]))
    for bad in (3, "two"):
        with pytest.raises(DataError, match="ngrams must be 1 or 2"):
            load(tmp_path / "p.txt", options={"ngrams": bad})


def words_decoded(ds) -> list[str]:
    return tokenizer_from_state(ds.meta["state"]).decode(ds.x)


def test_modality_defaults_and_configure(tmp_path: Path) -> None:
    assert resolve_architecture("text", "auto", "auto", "auto") == ("bow", "bow", "text_nll")
    assert resolve_architecture("text", "lstm", "auto", "auto") == ("lstm", "lstm", "text_nll")
    ds = load(write(tmp_path / "d.txt", ["one two", "three four five"]))
    cfg = ModelConfig()
    cfg.options["word_dropout"] = 0.5
    configure_text(cfg, ds.meta)
    assert cfg.options["vocab_size"] == ds.meta["vocab_size"] and cfg.options["max_length"] == ds.x.shape[1]
    assert cfg.options["pad_id"] == 0 and cfg.options["word_dropout"] == 0.5 and "rnn_hidden" in cfg.options
    assert "bow_hidden" in cfg.options and cfg.options["text_init"]  # idf of the bag-of-words encoder
    from_state = ModelConfig()
    configure_text(from_state, {"modality": "text", "state": ds.meta["state"]})  # a loaded run's shell dataset
    assert from_state.options["vocab_size"] == ds.meta["vocab_size"]


def test_real_trec_and_sms() -> None:
    trec = load(shared_dataset("trec"))
    assert len(trec) == 5952 and (trec.split == 1).sum() == 500 and trec.num_classes == 6
    assert trec.meta["split_kind"] == "official"
    sms = load(shared_dataset("sms_spam") / "SMSSpamCollection")
    assert len(sms) == 5574 and np.bincount(sms.y).tolist() == [4827, 747]
    assert (sms.split == 1).sum() == 1115
