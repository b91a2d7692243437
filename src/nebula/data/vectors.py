"""Pretrained word vectors in the standard text formats, aligned to a run's vocabulary.

Formats (one reader): word2vec text / GloVe ``.txt`` (``word v_1 .. v_D`` per line, GloVe without a
header, word2vec with a ``COUNT DIM`` first line) and fastText ``.vec`` (the same with the header).
A first line of exactly two integers is a header; its DIM must match the vectors. Only the words of
the vocabulary are parsed, so a large file costs one pass of string splits. Words holding spaces
(GloVe 840B) are read as everything before the last D fields. Nothing is ever downloaded.

``--data-option vectors=FILE`` makes the text loaders call :func:`aligned_vectors` after fitting
the vocabulary: ``meta["vectors"]`` is (V, D) float32 (rows of words missing from the file drawn from
N(0, s^2), s the standard deviation of the found vectors; ``<pad>`` zero), and the token embeddings
of the text encoders start from it (:func:`nebula.nn.text_init.initial_embedding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nebula.errors import DataError


def _is_int(s: str) -> bool:
    return s.isdigit()


def read_vectors(path: str | Path, words: set[str] | None = None, encoding: str = "utf-8",
                 lower: bool = False) -> tuple[dict[str, np.ndarray], int, int]:
    """Vectors of ``words`` (all when None) from a word2vec / GloVe / fastText text file; with ``lower``
    a file word also stands for its lower-cased form (an exact entry wins).

    Returns (word -> (D,) float32, D, number of entries in the file). Raises DataError for an
    unreadable file, a header whose DIM differs from the vectors, or a line with fewer than D values.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: vector file not found (vectors=FILE expects a word2vec/GloVe .txt or fastText .vec file)")
    found: dict[str, np.ndarray] = {}
    lowered: dict[str, np.ndarray] = {}
    dim = None
    entries = 0
    try:
        with open(path, encoding=encoding, errors="strict") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r").rstrip(" ")
                if number == 1:
                    line = line.lstrip("\ufeff")
                    head = line.split(" ")
                    if len(head) == 2 and _is_int(head[0]) and _is_int(head[1]):
                        dim = int(head[1])
                        if dim < 1:
                            raise DataError(f"{path}:1: header gives dimension {dim}")
                        continue
                if not line:
                    continue
                parts = line.split(" ")
                if dim is None:
                    dim = len(parts) - 1
                    if dim < 1:
                        raise DataError(f"{path}:{number}: expected 'word v_1 .. v_D', found {line[:40]!r}")
                if len(parts) - 1 < dim:
                    raise DataError(f"{path}:{number}: expected {dim} values after the word, found {len(parts) - 1} "
                                    "(dimension mismatch)")
                entries += 1
                word = " ".join(parts[: len(parts) - dim])
                store = found
                if words is not None and word not in words:
                    if not (lower and word.lower() in words):
                        continue
                    word, store = word.lower(), lowered
                try:
                    store.setdefault(word, np.asarray(parts[len(parts) - dim:], dtype=np.float32))
                except ValueError:
                    raise DataError(f"{path}:{number}: a value of {word[:30]!r} is not a number") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {encoding} ({exc.reason} at byte {exc.start} of a line)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if dim is None or entries == 0:
        raise DataError(f"{path}: no vectors found")
    return {**lowered, **found}, dim, entries


def aligned_vectors(path: str | Path, tokens: Sequence[str], pad_id: int = 0, seed: int = 0,
                    lower_fallback: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """(V, D) float32 matrix whose row i is the vector of ``tokens[i]`` and facts about the match.

    A token missing from the file also takes the vector of a file word whose lower-cased form it is
    (``lower_fallback``: a lower-cased vocabulary and a cased file); rows of tokens
    not found are drawn from N(0, s^2) with s the standard deviation of the found vectors (seeded),
    the ``pad_id`` row is zero. Raises DataError when no vocabulary word is in the file.
    """
    found, dim, entries = read_vectors(path, set(tokens), lower=lower_fallback)
    rows = [found.get(t) for t in tokens]
    hit = np.array([r is not None for r in rows])
    words = [t for t in tokens if not (t.startswith("<") and t.endswith(">"))]
    if not hit.any():
        raise DataError(f"{path}: none of the {len(words)} vocabulary words is among its {entries} vectors "
                        "(no vocabulary overlap; wrong language or casing?)")
    found_rows = np.stack([r for r in rows if r is not None])
    scale = float(found_rows.std()) or 1.0
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, size=(len(tokens), dim)).astype(np.float32)
    matrix[hit] = found_rows
    if 0 <= pad_id < len(tokens):
        matrix[pad_id] = 0.0
    facts = {"vectors_file": str(path), "vectors_dim": dim, "vectors_entries": entries,
             "vectors_coverage": float(hit.sum() / max(1, len(tokens)))}
    return matrix, facts
