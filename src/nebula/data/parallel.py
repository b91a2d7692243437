"""Parallel text for translation: a folder of ``{split}.{lang}`` files or a pair of files.

Layouts (plain UTF-8 or ``.gz``, one sentence per line, line i of the source file translating line i
of the target file):

* a folder holding ``train.en``, ``train.de``, ``test.en``, ... (Multi30k: ``train``, ``val``,
  ``test_2016_flickr``): the ``train`` split trains, the test split (``test_split``: default ``test``, or
  the only split besides train / val / valid / dev) is split 1;
* a pair of files ``corpus.en`` + ``corpus.de`` (give either as the source): no official split, a seeded
  ``test_fraction`` of the lines is held out.

Options: ``source`` / ``target`` language codes (the file suffixes), ``joint`` (one BPE model for both
languages, default) or per language, ``vocab_size`` (per model), ``min_freq``, ``max_length`` (tokens,
<bos>/<eos> included; longer sentences are cut), ``test_split``, ``encoding``, ``train_lines`` (> 0: only the
first that many training pairs, for quick runs and learning curves). The BPE models
(:mod:`nebula.data.bpe`) are fitted on the training lines only and travel as the dataset's ``state``.

The dataset: x (N, Ls) int64 source ids, target (N, Lt) int64 target ids, y None, split (N,) int8.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nebula.data.base import NebulaDataset, make_split, register_format
from nebula.data.bpe import BPETokenizer
from nebula.errors import DataError

_LANG = re.compile(r"^(?P<stem>.+?)\.(?P<lang>[a-z]{2,3}(?:[-_][a-zA-Z]{2,4})?)(?P<gz>\.gz)?$")
#: suffixes that are file types, never language codes
_NOT_LANGUAGES = {"txt", "csv", "tsv", "npz", "npy", "json", "yaml", "yml", "off", "obj", "ply", "png", "jpg", "h5",
                  "xyz", "pts", "bin", "dat", "py", "md", "gz", "zip", "tar", "log", "pt", "pth", "pkl", "hdf5", "mat",
                  "bmp", "gif", "tif", "nii", "binvox", "html", "xml", "toy", "ckpt", "cfg", "ini", "sh"}
_NOT_TEST = {"train", "val", "valid", "validation", "dev"}


@dataclass
class Corpus:
    """Raw sentence pairs: src / tgt lists of N strings, split (N,) int8 (0 train, 1 test), files read."""

    src: list[str]
    tgt: list[str]
    split: np.ndarray
    source: str
    target: str
    files: dict[str, str] = field(default_factory=dict)
    test_split: str = ""


def _parse(path: Path) -> tuple[str, str] | None:
    m = _LANG.match(path.name)
    if m is None or m["lang"] in _NOT_LANGUAGES:
        return None
    return m["stem"], m["lang"]


def _folder_files(path: Path) -> dict[str, dict[str, Path]]:
    """split -> language -> file of a folder."""
    out: dict[str, dict[str, Path]] = {}
    for f in sorted(path.iterdir()):
        parsed = _parse(f) if f.is_file() else None
        if parsed:
            out.setdefault(parsed[0], {})[parsed[1]] = f
    return out


def _is_folder(path: Path) -> bool:
    return path.is_dir() and len(_folder_files(path).get("train", {})) >= 2


def _siblings(path: Path) -> dict[str, Path]:
    parsed = _parse(path)
    if parsed is None:
        return {}
    return {lang: f for f in path.parent.iterdir() if f.is_file() and (p := _parse(f)) and p[0] == parsed[0]
            for lang in [p[1]]}


def _is_pair(path: Path) -> bool:
    return path.is_file() and len(_siblings(path)) >= 2


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """The lines of a plain or gzip text file (a final newline adds no line); DataError when unreadable or empty."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not {encoding} text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not any(ln.strip() for ln in lines):
        raise DataError(f"{path}: file is empty (expected one sentence per line)")
    return [ln.strip() for ln in lines]


def _pair_lines(src_file: Path, tgt_file: Path, encoding: str) -> tuple[list[str], list[str]]:
    src, tgt = read_lines(src_file, encoding), read_lines(tgt_file, encoding)
    if len(src) != len(tgt):
        raise DataError(f"{src_file} has {len(src)} lines but {tgt_file} has {len(tgt)} (expected one translation per line)")
    return src, tgt


def _choose(languages: list[str], source: str | None, target: str | None, where: str) -> tuple[str, str]:
    known = ", ".join(languages)
    for name, lang in (("source", source), ("target", target)):
        if lang is not None and lang not in languages:
            raise DataError(f"{where}: no {name} language '{lang}' (languages found: {known})")
    if source is None or target is None:
        rest = [lang for lang in languages if lang not in (source, target)]
        if len(rest) != 1 or (source is None and target is None):
            raise DataError(f"{where}: say which languages to use, e.g. --data-option source=en --data-option target=de "
                            f"(languages found: {known})")
        source, target = (rest[0], target) if source is None else (source, rest[0])
    if source == target:
        raise DataError(f"{where}: source and target are the same language '{source}'")
    return source, target


def read_corpus(path: str | Path, source: str | None = None, target: str | None = None, test_split: str | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, encoding: str = "utf-8") -> Corpus:
    """The raw sentence pairs of a folder or a pair of files (module docstring), checked line by line."""
    path = Path(path)
    if path.is_dir():
        splits = _folder_files(path)
        if "train" not in splits:
            raise DataError(f"{path}: no train split (expected files train.LANG or train.LANG.gz; found {sorted(splits) or 'none'})")
        source, target = _choose(sorted(splits["train"]), source, target, str(path))
        if test_split is None:
            candidates = [s for s in splits if s not in _NOT_TEST]
            test_split = "test" if "test" in candidates else (candidates[0] if len(candidates) == 1 else None)
            if test_split is None:
                raise DataError(f"{path}: no single test split among {sorted(splits)} (choose one with --data-option test_split=NAME)")
        if test_split not in splits:
            raise DataError(f"{path}: no split '{test_split}' (splits found: {', '.join(sorted(splits))})")
        for lang in (source, target):
            if lang not in splits[test_split]:
                raise DataError(f"{path}: split '{test_split}' has no '{lang}' file (expected {test_split}.{lang} or {test_split}.{lang}.gz)")
        tr = _pair_lines(splits["train"][source], splits["train"][target], encoding)
        te = _pair_lines(splits[test_split][source], splits[test_split][target], encoding)
        split = np.concatenate([np.zeros(len(tr[0]), np.int8), np.ones(len(te[0]), np.int8)])
        files = {"test_source": str(splits[test_split][source]), "test_target": str(splits[test_split][target])}
        return Corpus(tr[0] + te[0], tr[1] + te[1], split, source, target, files, test_split)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    siblings = _siblings(path)
    parsed = _parse(path)
    if parsed is None or len(siblings) < 2:
        raise DataError(f"{path}: expected a pair of files NAME.SRC and NAME.TGT (e.g. corpus.en and corpus.de)")
    source, target = _choose(sorted(siblings), source or parsed[1], target, str(path))
    src, tgt = _pair_lines(siblings[source], siblings[target], encoding)
    split = make_split(None, len(src), test_fraction, split_seed)
    return Corpus(src, tgt, split, source, target, {"source": str(siblings[source]), "target": str(siblings[target])})


def tokenizers_from_state(state: dict[str, Any]) -> tuple[BPETokenizer, BPETokenizer]:
    """(source, target) tokenizers of a translation data state (the same object twice when joint)."""
    if not isinstance(state, dict) or state.get("kind") != "translation":
        raise DataError(f"translation state: expected kind 'translation', found {state.get('kind') if isinstance(state, dict) else state!r}")
    src = BPETokenizer.from_state(state["src"])
    return src, (src if state.get("tgt") is None else BPETokenizer.from_state(state["tgt"]))


def load_parallel(path: Path, source: str | None = None, target: str | None = None, joint: bool = True, vocab_size: int = 8000,
          min_freq: int = 2, max_length: int = 128, test_split: str | None = None, encoding: str = "utf-8",
          state: dict[str, Any] | None = None, test_fraction: float = 0.2, split_seed: int = 0,
          train_lines: int = 0) -> NebulaDataset:
    if state:  # read the way the run's training data was read
        source, target = source or state["source"], target or state["target"]
        test_split = test_split or state.get("test_split") or None
    corpus = read_corpus(path, source, target, test_split, test_fraction, split_seed, encoding)
    if int(train_lines) > 0:
        keep = np.flatnonzero((corpus.split != 0) | (np.cumsum(corpus.split == 0) <= int(train_lines)))
        corpus = Corpus([corpus.src[i] for i in keep], [corpus.tgt[i] for i in keep], corpus.split[keep], corpus.source,
                        corpus.target, corpus.files, corpus.test_split)
    if state:
        if (corpus.source, corpus.target) != (state["source"], state["target"]):
            raise DataError(f"{path}: the run translates {state['source']}->{state['target']}, "
                            f"not {corpus.source}->{corpus.target}")
        src_tok, tgt_tok = tokenizers_from_state(state)
    else:
        if int(max_length) < 3:
            raise DataError(f"translation max_length must be >= 3 (<bos>, one token, <eos>), found {max_length}")
        train = np.flatnonzero(corpus.split == 0)
        src_train, tgt_train = [corpus.src[i] for i in train], [corpus.tgt[i] for i in train]
        if joint:
            src_tok = tgt_tok = BPETokenizer.fit(src_train + tgt_train, vocab_size, min_freq, max_length)
        else:
            src_tok = BPETokenizer.fit(src_train, vocab_size, min_freq, max_length)
            tgt_tok = BPETokenizer.fit(tgt_train, vocab_size, min_freq, max_length)
        state = {"kind": "translation", "source": corpus.source, "target": corpus.target, "test_split": corpus.test_split,
                 "src": src_tok.to_state(), "tgt": None if tgt_tok is src_tok else tgt_tok.to_state()}
    x, target_ids = src_tok.pad(corpus.src), tgt_tok.pad(corpus.tgt)
    meta = {"modality": "translation", "name": path.stem if path.is_file() else path.name,
            "source_language": corpus.source, "target_language": corpus.target, "test_split": corpus.test_split,
            "shared_vocab": tgt_tok is src_tok, "src_vocab_size": src_tok.vocab_size, "tgt_vocab_size": tgt_tok.vocab_size,
            "max_length": src_tok.max_length, "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3,
            "files": corpus.files, "encoding": encoding, "state": state,
            "split_kind": "official" if corpus.test_split else f"random {1 - test_fraction:.0%}/{test_fraction:.0%} seed {split_seed}"}
    return NebulaDataset(x=x, y=None, split=corpus.split, target=target_ids, meta=meta)


#: the same loader reads both layouts (it tells them apart by the path)
register_format("parallel-folder", "translation", _is_folder, priority=9)(load_parallel)
register_format("parallel-pair", "translation", _is_pair, priority=9)(load_parallel)
