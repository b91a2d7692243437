"""Translation evaluation (evaluator ``translation``, runs of method family ``translation``).

On the test split (``split == 1``; the first ``translation.eval_sentences`` pairs when > 0) the raw source
sentences are translated with beam ``translation.eval_beam`` and scored, detokenised, against the raw
references with sacreBLEU (``bleu``: corpus BLEU, 13a tokenisation) and chrF (``chrf``). Runs with a
sentence latent add:

* ``latent_effect``: the fraction of (at most 200) test sentences whose greedy translation changes when
  the latent mu(x) is replaced by 0, i.e. whether the decoder uses the latent at all;
* with anchors, ``anchor_usage`` (test sentences per nearest anchor), ``anchors_used``, and
  ``anchor_samples``: one fixed test source decoded greedily with z = a_k for every anchor k, the test
  sources nearest to each anchor, and ``interpolation``: the fixed source decoded along
  z = (1 - t) a_i + t a_j between the two most distant anchors.

The translations go to ``translations_test.txt`` in the run folder (one a line, test order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.evaluate.evaluator import register_evaluator


def _corpus(run: Any) -> Any:
    from nebula.data.parallel import read_corpus

    cfg, state = run.config, (run.info or {}).get("data_state") or {}
    return read_corpus(cfg.data.source, state.get("source"), state.get("target"), state.get("test_split") or None,
                       cfg.data.test_fraction, cfg.data.split_seed, cfg.data.options.get("encoding", "utf-8"))


def _sentences(run: Any, rows: list[torch.Tensor]) -> list[str]:
    from nebula.translation.api import tokenizers

    tgt = tokenizers(run)[1]
    width = max((len(r) for r in rows), default=1) or 1
    grid = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        grid[i, : len(r)] = r
    return tgt.decode(grid)


@register_evaluator("translation", families=("translation",))
def evaluate_translation(run: Any, dataset: Any, fixed: int = 0, nearest: int = 2, steps: int = 5) -> dict[str, Any]:
    """BLEU / chrF on the test split and the latent report (module docstring)."""
    import sacrebleu

    from nebula.errors import NebulaError
    from nebula.translation.api import tokenizers, translate, translate_ids

    tc = run.config.translation
    try:
        corpus = _corpus(run)
    except (NebulaError, OSError) as exc:
        return {"error": f"data not available: {exc}"}
    test = np.flatnonzero(corpus.split == 1)
    if tc.eval_sentences > 0:
        test = test[: tc.eval_sentences]
    sources, refs = [corpus.src[i] for i in test], [corpus.tgt[i] for i in test]
    hyps = translate(run, sources, beam=tc.eval_beam)
    out: dict[str, Any] = {
        "bleu": float(sacrebleu.corpus_bleu(hyps, [refs]).score),
        "chrf": float(sacrebleu.corpus_chrf(hyps, [refs]).score),
        "test_sentences": int(len(test)), "beam": int(tc.eval_beam), "length_penalty": float(tc.length_penalty),
        "direction": f"{corpus.source}-{corpus.target}",
        "examples": [{"source": s, "reference": r, "translation": h} for s, r, h in list(zip(sources, refs, hyps))[:5]],
    }
    if run.run_dir is not None:
        Path(run.run_dir, "translations_test.txt").write_text("".join(f"{h}\n" for h in hyps), encoding="utf-8")
    model = run.model
    if not model.has_latent or not len(test):
        return out
    src_tok = tokenizers(run)[0]
    probe = sources[:200]
    x = src_tok.pad(probe)
    device = next(model.parameters()).device
    mu = torch.cat([model.embed(x[i : i + 256].to(device)).cpu() for i in range(0, len(x), 256)])
    with_mu = _sentences(run, translate_ids(run, x, beam=1))
    at_zero = _sentences(run, translate_ids(run, x, beam=1, z=torch.zeros_like(mu)))
    out["latent_effect"] = float(np.mean([a != b for a, b in zip(with_mu, at_zero)]))
    anchors = model.anchor_array()
    if anchors is None:
        return out
    anchors = anchors.float().cpu()
    m = len(anchors)
    d = torch.cdist(mu, anchors)
    usage = np.bincount(d.argmin(1).numpy(), minlength=m)
    out["anchor_usage"] = usage.tolist()
    out["anchors_used"] = int((usage > 0).sum())
    one = x[fixed : fixed + 1].repeat(m, 1)
    decoded = _sentences(run, translate_ids(run, one, beam=1, z=anchors))
    order = d.argsort(0)[:nearest].T  # (m, nearest) test sentences nearest to each anchor
    out["anchor_samples"] = {"source": probe[fixed], "by_anchor": [
        {"anchor": k, "decoded": decoded[k], "nearest_sources": [probe[int(i)] for i in order[k]]} for k in range(m)]}
    if m >= 2:
        pair = torch.cdist(anchors, anchors)
        i, j = divmod(int(pair.argmax()), m)
        t = torch.linspace(0, 1, steps).unsqueeze(1)
        path = (1 - t) * anchors[i] + t * anchors[j]
        line = _sentences(run, translate_ids(run, x[fixed : fixed + 1].repeat(steps, 1), beam=1, z=path))
        out["interpolation"] = {"anchors": [i, j], "source": probe[fixed], "steps": line}
    return out
