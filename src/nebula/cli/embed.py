"""``nebula embed``: embed data with a trained run into an .npz."""

from __future__ import annotations

import argparse
from pathlib import Path

from nebula.cli.command import command
from nebula.errors import NebulaError


def _embed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--data", required=True, help="dataset name or path to embed")
    p.add_argument("--out", required=True, help="output .npz (z, assign, anchors, y, split, rec)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")


@command("embed", "embed data with a trained run into an .npz", _embed_arguments)
def cmd_embed(args: argparse.Namespace) -> int:
    import yaml

    from nebula.files import check_writable_folder
    from nebula.run import compute_embeddings, load, save_embeddings
    from nebula.train.trainer import resolve_device

    if Path(args.out).is_dir():
        raise NebulaError(f"{args.out}: is a folder (expected the path of an .npz file to write)")
    check_writable_folder(Path(args.out).parent)  # before the work, not after
    device = resolve_device(args.device)
    run = load(args.run, device=str(device))
    options = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.data_option)}
    ds = run.load_data(args.data, **options)
    if ds.input_shape != tuple(run.info["input_shape"]) and run.info.get("modality") == "image":
        raise NebulaError(f"{args.data}: samples have shape {ds.input_shape}, the run was trained on {tuple(run.info['input_shape'])}")
    emb = compute_embeddings(run.model, ds, device)
    out = Path(args.out)
    save_embeddings(out, emb)
    print(f"wrote {out}: z {emb['z'].shape}")
    return 0
