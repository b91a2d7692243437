"""The Python API of translation: ``translate(run, sentences)`` -> translations, with a trained run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nebula.errors import NebulaError


def tokenizers(run: Any) -> tuple[Any, Any]:
    """(source, target) BPE tokenizers of a translation run (its saved data state)."""
    from nebula.data.parallel import tokenizers_from_state

    state = (run.info or {}).get("data_state") or {}
    if state.get("kind") != "translation":
        raise NebulaError(f"{run.run_dir}: not a translation run (method {run.config.method!r})")
    return tokenizers_from_state(state)


def load_run(run_dir: str | Path, device: str = "cpu") -> Any:
    """A finished translation run folder, loaded (model in eval mode)."""
    from nebula.run import load

    run = load(run_dir, device=device)
    if run.config.method != "translation":
        raise NebulaError(f"{run_dir}: not a translation run (method {run.config.method!r})")
    return run


@torch.no_grad()
def translate_ids(run: Any, x: torch.Tensor, beam: int | None = None, length_penalty: float | None = None,
                  batch_size: int = 64, z: torch.Tensor | None = None) -> torch.Tensor | list[torch.Tensor]:
    """Output ids for source ids x (N, Ls), decoded in batches of similar length; a list of (T_i,) rows in input order."""
    from nebula.translation.decode import decode

    model = run.model
    model.eval()
    tc = run.config.translation
    beam = tc.beam if beam is None else int(beam)
    alpha = tc.length_penalty if length_penalty is None else float(length_penalty)
    device = next(model.parameters()).device
    order = torch.argsort((x != 0).sum(1), descending=True)  # similar lengths share a batch
    out: list[torch.Tensor | None] = [None] * len(x)
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        zi = z[idx].to(device) if z is not None else None
        ids = decode(model, x[idx].to(device), beam, alpha, zi).cpu()
        for j, row in zip(idx.tolist(), ids):
            out[j] = row
    return out  # type: ignore[return-value]


def translate(run: Any, sentences: Sequence[str], beam: int | None = None, length_penalty: float | None = None,
              batch_size: int = 64) -> list[str]:
    """Translate detokenised ``sentences`` with a trained run (a :class:`~nebula.run.Run` or a folder path);
    ``beam`` 1 = greedy (default ``translation.beam``), ``length_penalty`` the GNMT alpha."""
    if isinstance(run, (str, Path)):
        run = load_run(run)
    src_tok, tgt_tok = tokenizers(run)
    sentences = [s.strip() for s in sentences]
    if not sentences:
        return []
    x = src_tok.pad(sentences)
    rows = translate_ids(run, x, beam, length_penalty, batch_size)
    grid = torch.zeros(len(rows), max(len(r) for r in rows) or 1, dtype=torch.long)
    for i, r in enumerate(rows):
        grid[i, : len(r)] = r
    return tgt_tok.decode(grid)
