"""Parallel-text loading: BPE round trip, layouts, the saved state, clear errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from nebula.data import load
from nebula.data.bpe import BPETokenizer
from nebula.data.parallel import read_corpus, tokenizers_from_state
from nebula.errors import DataError
from tests.translation.helpers import copy_corpus


def test_bpe_round_trip_keeps_case_accents_and_punctuation():
    texts = ["Zwei junge weiße Männer sind im Freien.", "Ein Mädchen klettert, schnell!", "A man in a blue shirt."] * 20
    tok = BPETokenizer.fit(texts, vocab_size=200, min_freq=1)
    ids = tok.pad(texts[:3])
    assert ids.shape[0] == 3 and ids[:, 0].eq(2).all()
    assert tok.decode(ids) == texts[:3]
    again = BPETokenizer.from_state(tok.to_state())
    assert again.decode(again.pad(texts[:3])) == texts[:3]


def test_folder_of_splits_gz(tmp_path):
    root = copy_corpus(tmp_path / "c", train=50, test=10, gz=True)
    ds = load(root, options={"source": "src", "target": "tgt"})
    assert ds.modality == "translation" and len(ds) == 60
    assert ds.x.dtype.is_floating_point is False and ds.target.shape[0] == 60
    assert (ds.split == 1).sum() == 10 and ds.meta["shared_vocab"]
    src, tgt = tokenizers_from_state(ds.meta["state"])
    corpus = read_corpus(root, "src", "tgt")
    assert tgt.decode(ds.target[:3]) == corpus.tgt[:3]
    # new data read through the saved state uses the same tokenizer
    again = load(root, options={"state": ds.meta["state"]})
    assert np.array_equal(again.x.numpy(), ds.x.numpy())


def test_pair_of_files_random_split(tmp_path):
    (tmp_path / "corpus.en").write_text("a b\nc d\ne f\ng h\ni j\n")
    (tmp_path / "corpus.de").write_text("A B\nC D\nE F\nG H\nI J\n")
    ds = load(tmp_path / "corpus.en", options={"target": "de", "min_freq": 1}, test_fraction=0.4)
    assert len(ds) == 5 and (ds.split == 1).sum() == 2
    assert ds.meta["source_language"] == "en" and ds.meta["target_language"] == "de"


def test_line_count_mismatch(tmp_path):
    root = copy_corpus(tmp_path / "c", train=20, test=5)
    (root / "test.tgt").write_text("ONE\nTWO\n")
    with pytest.raises(DataError, match=r"has 5 lines but .*test.tgt has 2"):
        load(root, options={"source": "src", "target": "tgt"})


def test_missing_language_and_split_and_empty_file(tmp_path):
    root = copy_corpus(tmp_path / "c", train=20, test=5)
    with pytest.raises(DataError, match="no target language 'de'"):
        load(root, options={"source": "src", "target": "de"})
    with pytest.raises(DataError, match="no split 'val'"):
        load(root, options={"source": "src", "target": "tgt", "test_split": "val"})
    (root / "test.tgt").unlink()
    with pytest.raises(DataError, match="split 'test' has no 'tgt' file"):
        load(root, options={"source": "src", "target": "tgt"})
    root2 = copy_corpus(tmp_path / "d", train=20, test=5)
    (root2 / "train.tgt").write_text("")
    with pytest.raises(DataError, match="file is empty"):
        load(root2, options={"source": "src", "target": "tgt"})


def test_three_languages_need_a_choice(tmp_path):
    root = copy_corpus(tmp_path / "c", train=10, test=3)
    (root / "train.fr").write_bytes(gzip.compress(b"x\n" * 10))
    with pytest.raises(DataError, match="say which languages"):
        load(root)
