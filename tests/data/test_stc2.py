"""STC2 loader (NAME.txt + NAME_gnd.txt) on generated files: BOM, labels, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nebula.data import detect_format, load
from nebula.errors import DataError


def pair(tmp_path: Path, texts: list[str], labels: list[str], bom: bool = False) -> Path:
    text = tmp_path / "Snippets.txt"
    text.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(texts) + "\n").encode("utf-8"))
    (tmp_path / "Snippets_gnd.txt").write_text("\n".join(labels) + "\n")
    return text


TEXTS = ["apple banana fruit", "kernel linux driver", "banana split dessert", "linux shell bash",
         "fruit salad apple", "driver update kernel", "apple pie", "bash script linux"]


def test_stc2_reads_labels_and_strips_bom(tmp_path: Path) -> None:
    path = pair(tmp_path, TEXTS, ["2", "1", "2", "1", "2", "1", "2", "1"], bom=True)
    assert detect_format(path).name == "stc2"
    assert detect_format(tmp_path / "Snippets_gnd.txt").name == "stc2"  # either file of the pair
    ds = load(path, test_fraction=0.25)
    assert ds.modality == "text" and len(ds) == 8 and ds.num_classes == 2
    assert ds.meta["class_names"] == ["1", "2"] and ds.y.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    assert (ds.split == 1).sum() == 2
    tokens = ds.meta["state"]["tokens"]
    assert "apple" in tokens and not any(t.startswith("\ufeff") for t in tokens)  # the BOM is not a word
    assert ds.meta["doc_freq"][tokens.index("linux")] == sum("linux" in t for t, s in zip(TEXTS, ds.split) if s == 0)


def test_stc2_without_gnd_is_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("\n".join(TEXTS))
    assert detect_format(path).name == "lines"


def test_stc2_line_count_mismatch(tmp_path: Path) -> None:
    path = pair(tmp_path, TEXTS, ["1"] * 7)
    with pytest.raises(DataError, match=r"8 lines but Snippets_gnd.txt has 7 labels"):
        load(path)


def test_stc2_non_integer_label(tmp_path: Path) -> None:
    path = pair(tmp_path, TEXTS, ["1", "2", "x3", "1", "2", "1", "2", "1"])
    with pytest.raises(DataError, match=r"Snippets_gnd.txt:3: expected an integer label, found 'x3'"):
        load(path)


def test_stc2_cli_error_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = pair(tmp_path, TEXTS, ["1"] * 5)
    proc = subprocess.run([sys.executable, "-m", "nebula", "train", "--data", str(path), "--epochs", "1",
                           "-o", str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "8 lines but" in proc.stderr
    assert not (tmp_path / "run").exists()
