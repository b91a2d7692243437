"""Short-text clustering files in the STC2 layout (Xu et al. 2017): ``NAME.txt`` holds one text per line,
its sibling ``NAME_gnd.txt`` the label of the same line (an integer, 1-based in the published sets).

Format ``stc2`` (text modality), detected when the ``.txt`` file has a ``NAME_gnd.txt`` sibling (or the
``_gnd`` file itself is given). Byte-order marks are removed (``SearchSnippets.txt`` starts with one);
line i of the text file is labelled by line i of the label file, so empty lines are kept as texts and
only trailing blank lines are dropped. No official split: the loader makes the seeded stratified one.
Options: those of every text loader (see :mod:`nebula.data.text`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from nebula.data.base import NebulaDataset, register_format
from nebula.data.text import _common, _labels, _other_format_options, read_text, text_dataset
from nebula.errors import DataError

GND_SUFFIX = "_gnd"
INTEGER = re.compile(r"[+-]?\d+")


def stc2_pair(path: Path) -> tuple[Path, Path] | None:
    """(text file, label file) when ``path`` is either of an STC2 pair, else None."""
    if not path.is_file() or path.suffix.lower() != ".txt":
        return None
    if path.stem.endswith(GND_SUFFIX):
        text = path.with_name(path.stem[: -len(GND_SUFFIX)] + path.suffix)
        return (text, path) if text.is_file() else None
    gnd = path.with_name(path.stem + GND_SUFFIX + path.suffix)
    return (path, gnd) if gnd.is_file() else None


def _lines(path: Path, encoding: str) -> list[str]:
    lines = read_text(path, encoding).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_stc2(text_path: Path, label_path: Path, encoding: str = "utf-8") -> tuple[list[str], list[str]]:
    """(texts, label strings) of an STC2 pair; a one-line DataError for a line-count mismatch or a label
    that is not an integer."""
    texts = _lines(text_path, encoding)
    labels = _lines(label_path, encoding)
    if len(texts) != len(labels):
        raise DataError(f"{text_path}: {len(texts)} lines but {label_path.name} has {len(labels)} labels "
                        "(expected one label per line)")
    names = []
    for number, value in enumerate(labels, 1):
        value = value.strip()
        if not INTEGER.fullmatch(value):
            raise DataError(f"{label_path}:{number}: expected an integer label, found {value[:40]!r}")
        names.append(str(int(value)))
    return [t.strip() for t in texts], names


@register_format("stc2", "text", lambda p: stc2_pair(p) is not None, priority=7)
def load_stc2(path: Path, encoding: str = "utf-8", tokenizer: str = "word", max_vocab: int | None = None,
              min_freq: int | None = None, lower: bool = True, max_length: int | None = None, ngrams: int | None = None,
              state: dict[str, Any] | None = None, test_fraction: float = 0.2, split_seed: int = 0,
              vectors: str | None = None, **other: Any) -> NebulaDataset:
    """``NAME.txt`` + ``NAME_gnd.txt`` (SearchSnippets, StackOverflow, Biomedical of STC2)."""
    _other_format_options(other, state, path, "stc2")
    pair = stc2_pair(path)
    if pair is None:  # only reached when called directly
        raise DataError(f"{path}: expected NAME.txt with a sibling NAME{GND_SUFFIX}.txt")
    texts, names = read_stc2(*pair, encoding=encoding)
    y, classes = _labels(names)
    return text_dataset(texts, np.asarray(y), None, str(pair[0]), name=pair[0].stem, class_names=classes,
                        encoding=encoding, **_common(locals()))
