"""`nebula train --help`, `--threads`, the pointer to `nebula eval` and the eval summary (issue 17, points 6 and 8)."""

from __future__ import annotations

import pytest

from nebula.cli import main
from nebula.config import TrainConfig


def test_train_help_gives_defaults_and_lists_output_first(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag, default in (("--epochs", TrainConfig.epochs), ("--batch-size", TrainConfig.batch_size),
                          ("--lr", f"{TrainConfig.lr:g}"), ("--seed", TrainConfig.seed)):
        block = text.split(f"  {flag} ", 1)[1].split("\n  -", 1)[0]
        assert f"default {default}" in " ".join(block.split()), (flag, block)
    reference = text.split("reference flags:", 1)[1]
    assert reference.lstrip().startswith("-o OUTPUT, --output OUTPUT")
    assert "--threads" in text


def test_train_points_to_eval_and_eval_prints_no_empty_plugin(tmp_path, tiny_npz, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(tiny_npz), "-m", "--anchors", "3", "--epochs", "2", "--latent-dim", "2",
                 "--batch-size", "16", "--set", "train.pretrain_epochs=1", "--set", "model.hidden=[16]",
                 "--set", "train.figures=false", "--device", "cpu", "--threads", "1", "-o", str(run)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"next: nebula eval {run}" in out and "epoch 2/2" in out
    assert main(["eval", str(run), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "{}" not in printed and "anchors:" in printed
    assert main(["train", "--data", str(tiny_npz), "--threads", "-2", "-o", str(tmp_path / "r2")]) == 2
