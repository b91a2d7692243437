"""Text datasets: TREC question files, ``label<TAB>text`` files (SMS Spam Collection), CSV/TSV files with
label and text columns, and plain files of one sentence per line (no labels).

Every loader returns ``x``: (N, L) int64 token ids laid out ``<bos> tokens <eos> <pad>...`` (see
:mod:`nebula.data.tokenize`), ``target`` = None (the model reconstructs x), int64 labels (or None), and
``meta["state"]``: the tokenizer fitted on the *training split* only. Reading new data through a run
passes that state back as ``state=`` so the same vocabulary and length are used.

Common loader options (``--data-option KEY=VALUE``):
    encoding     utf-8 or latin-1 (TREC defaults to latin-1, the rest to utf-8); anything else is an error
    tokenizer    word (default) or subword (WordPiece trained with the ``tokenizers`` library)
    max_vocab    vocabulary size including the 4 specials (word: no limit, subword: 8000)
    min_freq     minimum training-split count of a word (default 1; subword default 2)
    lower        lower-case before tokenising (default true)
    ngrams       1 (default): words only; 2 (word tokenizer): frequent adjacent word pairs are tokens
                 too, their ids after <eos> (bag-of-words coders count them; sequence coders stop at <eos>)
    max_length   padded length L including <bos>/<eos>; default: 99th percentile of the training
                 lengths + 2, at most 128
    state        a saved tokenizer state (set by ``Run.load_data``; overrides the fitting options)
Datasets without an official split are split here (stratified, ``test_fraction``, ``split_seed``, the
same rule as :func:`nebula.data.base.make_split`) *before* the vocabulary is fitted.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from nebula.data.base import NebulaDataset, make_split, register_format
from nebula.data.tokenize import (
    TextTokenizer,
    fit_tokenizer,
    tokenizer_facts,
    tokenizer_from_state,
)
from nebula.errors import DataError

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1"}
TREC_LINE = re.compile(r"^([A-Z]+):(\S+) (.*)$")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "y", "v1", "type", "coarse")
TEXT_NAMES = ("text", "sentence", "message", "question", "review", "content", "body", "v2", "sms", "document")
MAX_AUTO_LENGTH = 128


# --------------------------------------------------------------------------- reading
def read_text(path: Path, encoding: str) -> str:
    """The decoded content of ``path`` (BOM and ``\\r`` removed); a clear error for undecodable bytes."""
    enc = ENCODINGS.get(str(encoding).lower())
    if enc is None:
        raise DataError(f"{path}: unsupported encoding {encoding!r} (expected utf-8 or latin-1)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid {enc} (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "pass --data-option encoding=latin-1 if the file is latin-1") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as f:
        raw = f.read(size)
    if b"\x00" in raw:
        return ""
    return raw.decode("latin-1")


def _head_lines(path: Path, count: int = 20) -> list[str]:
    lines = [ln for ln in _head(path).split("\n") if ln.strip()]
    return lines[:-1][:count] if len(lines) > 1 else lines  # the last may be cut at the byte limit


# --------------------------------------------------------------------------- shared dataset builder
def _labels(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """String labels -> (int64 ids, class names); integer-looking labels are ordered numerically."""
    names = sorted(set(values))
    if all(re.fullmatch(r"-?\d+", v) for v in names):
        names = sorted(names, key=int)
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def text_dataset(texts: list[str], y: np.ndarray | None, split: np.ndarray | None, source: str, *,
                 state: dict[str, Any] | None = None, tokenizer: str = "word", max_vocab: int | None = None,
                 min_freq: int | None = None, lower: bool = True, max_length: int | None = None, ngrams: int | None = None,
                 test_fraction: float = 0.2, split_seed: int = 0, vectors: str | None = None,
                 **meta: Any) -> NebulaDataset:
    """Split (when there is no official split), fit the tokenizer on the train split, encode everything.

    texts: N strings; y: (N,) int64 or None; split: (N,) int8 (0 train, 1 test) or None.
    Returns a dataset with x: (N, L) int64 and ``meta`` holding the tokenizer facts and its ``state``;
    when the tokenizer is fitted here also ``doc_freq`` (V,) (training texts holding each token, the
    idf of the bag-of-words encoder), ``train_ids`` (the training split's rows of x: the encoder's LSA
    word vectors are fitted on them) and, with ``vectors=FILE``, the aligned (V, D) ``vectors``
    (:mod:`nebula.data.vectors`).
    """
    if not texts:
        raise DataError(f"{source}: no text found (expected at least one line)")
    if split is None:
        split = make_split(y, len(texts), test_fraction, split_seed)
        meta["split_kind"] = f"stratified {1 - test_fraction:.0%}/{test_fraction:.0%} seed {split_seed}"
    split = np.asarray(split, dtype=np.int8)
    tok: TextTokenizer
    if state:
        tok = tokenizer_from_state(state)
        if max_length is not None and int(max_length) != tok.max_length:
            raise DataError(f"{source}: max_length={max_length} differs from the saved tokenizer's {tok.max_length}")
    else:
        train_texts = [t for t, s in zip(texts, split) if s == 0] or list(texts)
        freq = (2 if tokenizer == "subword" else 1) if min_freq is None else int(min_freq)
        tok = fit_tokenizer(train_texts, tokenizer, max_vocab, freq, bool(lower), int(max_length or 3),
                            ngrams=1 if ngrams is None else ngrams)
        if max_length is None:  # 99th percentile of the training lengths (words and word pairs) + <bos>/<eos>
            lengths = [len(ids) + len(tok.pair_ids(ids)) for ids in tok.batch_ids(train_texts)]
            tok.max_length = max(3, int(min(np.ceil(np.percentile(lengths, 99)) + 2, MAX_AUTO_LENGTH)))
    x, lengths = tok.encode(texts)
    ids = x.numpy()
    inside = ids[:, 1:] > 3
    unk = (ids[:, 1:] == 1)
    test = split == 1
    if not state:
        train_ids = ids[split == 0] if (split == 0).any() else ids
        meta.update(doc_freq=document_frequency(train_ids, tok.vocab_size), num_train_docs=len(train_ids),
                    train_ids=train_ids)
        if vectors:
            from nebula.data.vectors import aligned_vectors

            matrix, facts = aligned_vectors(vectors, [tok.id_to_token(i) for i in range(tok.num_words)])
            pairs = np.asarray(tok.pairs, dtype=np.int64).reshape(-1, 2)
            if len(pairs):  # a word pair starts from the mean of its two words' vectors
                matrix = np.concatenate([matrix, (matrix[pairs[:, 0]] + matrix[pairs[:, 1]]) / 2])
            meta["vectors"] = matrix
            meta.update(facts)
    meta.update(modality="text", **tokenizer_facts(tok), state=tok.to_state(),
                truncated=int((lengths > tok.max_length - 2).sum()),
                unk_rate_train=float(unk[~test].sum() / max(1, (inside | unk)[~test].sum())),
                unk_rate_test=float(unk[test].sum() / max(1, (inside | unk)[test].sum())) if test.any() else 0.0)
    return NebulaDataset(x=x, y=y, split=split, meta=meta)


def document_frequency(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """(V,) int64: how many rows of ``ids`` (N, L) hold each token id at least once."""
    n, length = ids.shape
    rows = np.repeat(np.arange(n), length)
    pairs = np.unique(rows * vocab_size + ids.reshape(-1))
    return np.bincount(pairs % vocab_size, minlength=vocab_size).astype(np.int64)


#: options of one text format that a run may carry to another (``Run.load_data`` passes the training options)
FORMAT_OPTIONS = {"labels", "header", "delimiter", "label_column", "text_column"}  # vectors: see text_dataset


def _other_format_options(other: dict[str, Any], state: dict[str, Any] | None, path: Path, fmt: str) -> None:
    """Options of other text formats are ignored when reading through a run (``state`` given: e.g. TREC's
    ``labels`` when embedding a plain sentence file); anything else is an error."""
    unknown = sorted(k for k in other if not (state and k in FORMAT_OPTIONS))
    if unknown:
        raise DataError(f"{path}: format '{fmt}' does not take option(s) {unknown}")


def _common(scope: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer and split options shared by every text loader, picked from a loader's locals()."""
    return {k: scope[k] for k in ("state", "tokenizer", "max_vocab", "min_freq", "lower", "max_length", "ngrams",
                                  "test_fraction", "split_seed", "vectors")}


# --------------------------------------------------------------------------- TREC
def _is_trec(path: Path) -> bool:
    if path.is_dir():
        return (path / "TREC.train").is_file() and (path / "TREC.test").is_file()
    if not path.is_file():
        return False
    lines = _head_lines(path)
    return bool(lines) and all(TREC_LINE.match(ln) for ln in lines)


def read_trec(path: Path, labels: str = "coarse", encoding: str = "latin-1") -> tuple[list[str], list[str]]:
    """Lines ``COARSE:fine question text`` -> (texts, label strings: ``COARSE`` or ``COARSE:fine``)."""
    if labels not in ("coarse", "fine"):
        raise DataError(f"{path}: TREC labels must be coarse or fine, found {labels!r}")
    texts, names = [], []
    for number, line in enumerate(read_text(path, encoding).split("\n"), 1):
        if not line.strip():
            continue
        match = TREC_LINE.match(line.strip())
        if match is None:
            raise DataError(f"{path}:{number}: expected 'COARSE:fine question text', found {line[:40]!r}")
        coarse, fine, text = match.groups()
        texts.append(text.strip())
        names.append(coarse if labels == "coarse" else f"{coarse}:{fine}")
    return texts, names


@register_format("trec", "text", _is_trec, priority=6)
def load_trec(path: Path, labels: str = "coarse", encoding: str = "latin-1", tokenizer: str = "word", max_vocab: int | None = None, min_freq: int | None = None,
                lower: bool = True, max_length: int | None = None, ngrams: int | None = None, state: dict[str, Any] | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, vectors: str | None = None, **other: Any) -> NebulaDataset:
    """TREC question classification (Li & Roth 2002). A folder with ``TREC.train`` and ``TREC.test``
    gives the official split (5,452 / 500); a single file gets a seeded stratified split.
    ``labels``: coarse (6 classes) or fine (50 classes, named ``COARSE:fine``)."""
    _other_format_options(other, state, path, "trec")
    files = [path / "TREC.train", path / "TREC.test"] if path.is_dir() else [path]
    texts, names, split = [], [], []
    for s, file in enumerate(files):
        t, n = read_trec(file, labels, encoding)
        texts += t
        names += n
        split += [s] * len(t)
    y, classes = _labels(names)
    return text_dataset(texts, y, np.array(split, np.int8) if path.is_dir() else None, str(path),
                        name="trec" if path.is_dir() else path.stem, class_names=classes, labels=labels,
                        encoding=encoding, **_common(locals()))


# --------------------------------------------------------------------------- label<TAB>text
def _is_label_tab(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() in (".csv",):
        return False
    lines = _head_lines(path)
    if not lines:
        return False
    for ln in lines:
        label, tab, text = ln.partition("\t")
        if not tab or not label or len(label) > 40 or " " in label.strip() or not text.strip():
            return False
    return True


@register_format("label-tab", "text", _is_label_tab, priority=4)
def load_label_tab(path: Path, encoding: str = "utf-8", tokenizer: str = "word", max_vocab: int | None = None, min_freq: int | None = None,
                lower: bool = True, max_length: int | None = None, ngrams: int | None = None, state: dict[str, Any] | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, vectors: str | None = None, **other: Any) -> NebulaDataset:
    """``label<TAB>text`` per line, no header (the SMS Spam Collection layout); no official split."""
    _other_format_options(other, state, path, "label-tab")
    texts, names = [], []
    for number, line in enumerate(read_text(path, encoding).split("\n"), 1):
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise DataError(f"{path}:{number}: expected 'label<TAB>text', found no tab in {line[:40]!r}")
        texts.append(text.strip())
        names.append(label.strip())
    y, classes = _labels(names)
    return text_dataset(texts, y, None, str(path), name=path.stem, class_names=classes, encoding=encoding,
                        **_common(locals()))


# --------------------------------------------------------------------------- CSV / TSV
def _is_delimited(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".csv", ".tsv")


def _column(header: list[str], wanted: str | int | None, names: tuple[str, ...], what: str, path: Path) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if wanted is None:
        for n in names:
            if n in lowered:
                return lowered.index(n)
        return None
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        index = int(wanted)
        if not 0 <= index < len(header):
            raise DataError(f"{path}: {what}_column={wanted} out of range (the file has {len(header)} columns)")
        return index
    if wanted.lower() not in lowered:
        raise DataError(f"{path}: no column named {wanted!r} (columns: {', '.join(header)})")
    return lowered.index(wanted.lower())


def detect_header(rows: list[list[str]]) -> bool:
    """True when the first row names the columns: a known label/text column name, or a first-column value
    that never repeats while the other first-column values do (labels of a classification file)."""
    first = [c.strip().lower() for c in rows[0]]
    if any(c in LABEL_NAMES for c in first) and any(c in TEXT_NAMES for c in first):
        return True
    if len(rows) < 4 or len(rows[0]) < 2:
        return False
    rest = [r[0] for r in rows[1:] if r]
    repeated = len(set(rest)) <= max(1, len(rest) // 2)
    return repeated and rows[0][0] not in set(rest)


@register_format("csv", "text", _is_delimited, priority=4)
def load_delimited(path: Path, encoding: str = "utf-8", header: bool | str = "auto", delimiter: str | None = None,
                   label_column: str | int | None = None, text_column: str | int | None = None,
                   tokenizer: str = "word", max_vocab: int | None = None, min_freq: int | None = None,
                lower: bool = True, max_length: int | None = None, ngrams: int | None = None, state: dict[str, Any] | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, vectors: str | None = None, **other: Any) -> NebulaDataset:
    """CSV (``.csv``, comma) or TSV (``.tsv``, tab) with a label and a text column.

    ``header``: auto (detected with :func:`detect_header`), true or false. Columns: by name or index;
    by default the first column named like a label (label, class, category, ...) and like a text
    (text, sentence, message, ...), else columns 0 (label) and 1 (text); a single column is unlabelled text.
    """
    _other_format_options(other, state, path, "csv")
    sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    rows = [r for r in csv.reader(io.StringIO(read_text(path, encoding)), delimiter=sep) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: no rows found (expected a label and a text column)")
    has_header = detect_header(rows) if header == "auto" else bool(header) and str(header).lower() not in ("false", "0", "no")
    head = rows[0] if has_header else [str(i) for i in range(len(rows[0]))]
    body = rows[1:] if has_header else rows
    width = len(head)
    if width == 1:
        label_idx, text_idx = None, 0
    else:
        label_idx = _column(head, label_column, LABEL_NAMES if has_header else (), "label", path)
        text_idx = _column(head, text_column, TEXT_NAMES if has_header else (), "text", path)
        if label_idx is None:
            label_idx = 0 if text_idx != 0 else 1
        if text_idx is None:
            text_idx = 1 if label_idx != 1 else 0
    texts, names = [], []
    for number, row in enumerate(body, 2 if has_header else 1):
        need = max(text_idx, label_idx or 0)
        if len(row) <= need:
            raise DataError(f"{path}:{number}: expected at least {need + 1} columns, found {len(row)}")
        texts.append(row[text_idx].strip())
        if label_idx is not None:
            names.append(row[label_idx].strip())
    y, classes = _labels(names) if label_idx is not None else (None, [])
    return text_dataset(texts, y, None, str(path), name=path.stem, class_names=classes, encoding=encoding,
                        header=has_header, **_common(locals()))


# --------------------------------------------------------------------------- one sentence per line
def _is_lines(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".txt", ".text", "") and bool(_head(path).strip())


@register_format("lines", "text", _is_lines, priority=-1)
def load_lines(path: Path, encoding: str = "utf-8", tokenizer: str = "word", max_vocab: int | None = None, min_freq: int | None = None,
                lower: bool = True, max_length: int | None = None, ngrams: int | None = None, state: dict[str, Any] | None = None,
                test_fraction: float = 0.2, split_seed: int = 0, vectors: str | None = None, **other: Any) -> NebulaDataset:
    """One sentence per line, no labels (blank lines skipped); no official split."""
    _other_format_options(other, state, path, "lines")
    texts = [ln.strip() for ln in read_text(path, encoding).split("\n") if ln.strip()]
    return text_dataset(texts, None, None, str(path), name=path.stem, encoding=encoding, **_common(locals()))


# --------------------------------------------------------------------------- modality
def configure_text(model_cfg: Any, meta: dict[str, Any]) -> None:
    """Fill vocab_size, special ids and max_length from the dataset (or its saved tokenizer ``state``)
    into ``model.options``; add the text network defaults that are not set yet (the config-level text
    defaults are the modality record's ``config_defaults``, nebula.modalities.text)."""
    facts = {k: meta[k] for k in ("vocab_size", "max_length", "pad_id", "unk_id", "bos_id", "eos_id") if k in meta}
    if "vocab_size" not in facts and meta.get("state"):
        facts = tokenizer_facts(tokenizer_from_state(meta["state"]))
        facts.pop("tokenizer", None)
    model_cfg.options.update(facts)
    from nebula.nn.bow import BOW_DEFAULTS, TEXT_INIT, remember_text_init
    from nebula.nn.sequence import DEFAULTS

    for key, value in {**DEFAULTS, **BOW_DEFAULTS}.items():
        if not key.endswith("_id"):
            model_cfg.options.setdefault(key, value)
    key = remember_text_init(meta)  # idf / pretrained vectors for the encoders built next
    if key is not None:
        model_cfg.options["text_init"] = key
        # the widths the initial word vectors give the encoders, recorded so that a saved run rebuilds
        # them without the data (nebula.run.load: the run folder has no LSA or vector file)
        init = TEXT_INIT[key]
        for name, option in (("vectors", "vectors_dim"), ("lsa", "lsa_dim")):
            if init.get(name) is not None:
                model_cfg.options[option] = int(init[name].shape[1])

