"""Text evaluation: token likelihood, greedy reconstruction, anchor samples and interpolations.

Evaluator ``text`` (runs of modality text), on the test split (``split == 1``):

* ``text_nll_per_token`` = sum_i L_rec,i(z_i = mu_i) / T and ``text_perplexity`` = exp of it, with
  T the number of scored tokens (words and <eos>, teacher forcing): the reconstruction likelihood given
  the posterior mean;
* ``text_elbo_nll_per_token`` = sum_i (L_rec,i(z_i ~ q) + KL_i) / T and ``text_elbo_perplexity``, an
  upper bound of the model's per-token perplexity (one posterior sample; variational runs only);
* with a bag-of-words decoder (``bow``) the NLL is that of the bag (NVDM's perplexity) and decoding a
  latent lists its most probable words, so the samples of an anchor are its topic words; the two
  greedy-decoding figures below need a sequence decoder and are left out;
* ``text_token_accuracy``: greedy decoding of mu_i (no teacher forcing) compared position by position
  with the input over its scored tokens; ``text_exact_match``: fraction of sentences decoded exactly.

Written to the run folder: ``text_samples.txt`` (decoder(a_k + sigma_k eps), 5 per anchor, sigma_k the
within-anchor spread; prior samples without anchors), ``text_interpolations.txt`` (decoder along the
segment between the latents of test sentences), ``text_reconstructions.txt`` and PNG renderings of
each in ``figures/``. The ``text`` renderer draws any (R, C, L) grid of token ids as sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nebula.data.tokenize import PAD_ID, TextTokenizer, sequence_ids, tokenizer_from_state  # noqa: E402
from nebula.evaluate.canvas import register_renderer  # noqa: E402
from nebula.evaluate.evaluator import register_evaluator  # noqa: E402
from nebula.latent.gaussian import kl_standard_normal  # noqa: E402
from nebula.losses.token import token_counts  # noqa: E402


# --------------------------------------------------------------------------- rendering
class TextRenderer:
    """Renderer for grids of token ids (R, C, L): one line of text per cell.

    Without a vocabulary it prints the ids; ``for_run(run)`` returns a renderer bound to the run's
    tokenizer (``run.info["data_state"]``). Grids with at most 3 rows (input / reconstruction) are
    listed column by column, so each input sits above its reconstruction; larger grids row by row.
    """

    def __init__(self, tokenizer: TextTokenizer | None = None) -> None:
        self.tokenizer = tokenizer

    def for_run(self, run: Any) -> TextRenderer:
        state = (getattr(run, "info", None) or {}).get("data_state")
        if not state and getattr(run, "dataset", None) is not None:
            state = run.dataset.meta.get("state")
        return TextRenderer(tokenizer_from_state(state)) if state else self

    def sentences(self, ids: np.ndarray) -> list[str]:
        ids = np.asarray(ids)
        if self.tokenizer is not None:
            return self.tokenizer.decode(ids)
        rows = np.rint(ids).astype(np.int64)
        return [" ".join(str(int(t)) for t in row if t != PAD_ID) for row in rows]

    def lines(self, grid: np.ndarray) -> list[str]:
        rows, cols = grid.shape[:2]
        text = np.array(self.sentences(grid.reshape(rows * cols, -1)), dtype=object).reshape(rows, cols)
        out: list[str] = []
        if rows <= 3:
            for c in range(cols):
                out += [f"[{c}.{r}] {text[r, c]}" for r in range(rows)] + [""]
        else:
            for r in range(rows):
                out += [f"[{r},{c}] {text[r, c]}" for c in range(cols)] + [""]
        return out[:-1]

    def __call__(self, grid: np.ndarray, path: Path, title: str = "") -> None:
        render_lines(self.lines(np.asarray(grid)), Path(path), title)


def render_lines(lines: list[str], path: Path, title: str = "", max_chars: int = 110) -> None:
    """Draw text lines (monospace, long lines cut at ``max_chars``) into a PNG (one text artist)."""
    shown = [ln if len(ln) <= max_chars else ln[: max_chars - 3] + "..." for ln in lines] or [""]
    line_height = 0.16  # inches at font size 8
    height = 0.5 + line_height * len(shown)
    fig = plt.figure(figsize=(min(14.0, 1.0 + 0.075 * max(len(ln) for ln in shown)), height))
    if title:
        fig.text(0.01, 1 - 0.25 / height, title, fontsize=9, weight="bold", va="center")
    fig.text(0.01, 1 - 0.45 / height, "\n".join(shown), family="monospace", fontsize=8, va="top", linespacing=1.25)
    fig.savefig(path, dpi=90)
    plt.close(fig)


register_renderer("text")(TextRenderer())


# --------------------------------------------------------------------------- evaluation
def run_tokenizer(run: Any, dataset: Any) -> TextTokenizer:
    state = (run.info or {}).get("data_state") or (dataset.meta.get("state") if dataset is not None else None)
    if not state:
        raise ValueError("text evaluation needs the run's tokenizer state (run.json data_state)")
    return tokenizer_from_state(state)


@torch.no_grad()
def token_metrics(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Likelihood and greedy-reconstruction metrics of ``model`` on token ids x: (N, L) (eval mode).

    Returns text_nll_per_token, text_perplexity, text_token_accuracy, text_exact_match and, for
    variational models, text_elbo_nll_per_token and text_elbo_perplexity (see module docstring).
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    nll = elbo = 0.0
    tokens = correct = exact = 0
    variational, sequence = False, True
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device)
        _, mu, log_sigma = model.encode(xb)
        nll += float(model.reconstruction.loss(model.decode(mu, xb), xb).sum())
        if log_sigma is not None:
            variational = True
            eps = torch.randn(mu.shape, generator=gen).to(device)
            z = mu + torch.exp(log_sigma) * eps
            kl = kl_standard_normal(mu, log_sigma).sum(1)
            elbo += float((model.reconstruction.loss(model.decode(z, xb), xb) + kl).sum())
        output = model.decode(mu)
        sequence = sequence and output.dim() == 3
        scored_ids = sequence_ids(xb) if sequence else xb  # a sequence decoder scores up to <eos>
        tokens += int(token_counts(scored_ids).sum())
        if sequence:  # a bag-of-words decoder has no word order to compare
            pred = model.to_data(output).to(xb.device)
            scored = scored_ids[:, 1:] != PAD_ID
            hit = (pred[:, 1:] == scored_ids[:, 1:]) & scored
            correct += int(hit.sum())
            exact += int((hit.sum(1) == scored.sum(1)).sum())
    out = {"text_nll_per_token": nll / max(tokens, 1), "text_scored_tokens": tokens}
    if sequence:
        out.update(text_token_accuracy=correct / max(tokens, 1), text_exact_match=exact / max(len(x), 1))
    out["text_perplexity"] = float(np.exp(out["text_nll_per_token"]))
    if variational:
        out["text_elbo_nll_per_token"] = elbo / max(tokens, 1)
        out["text_elbo_perplexity"] = float(np.exp(out["text_elbo_nll_per_token"]))
    return out


@torch.no_grad()
def greedy_text(model: torch.nn.Module, z: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Greedy decoding of latents z: (N, d) -> token ids (N, L) int64 (eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
    parts = [model.to_data(model.decode(z[i : i + batch_size].to(device))).cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(parts).numpy().astype(np.int64)


def fit_length(ids: np.ndarray, length: int) -> np.ndarray:
    """(N, K) ids padded with <pad> or cut to (N, length) (a bag's top words next to the inputs)."""
    if ids.shape[1] >= length:
        return ids[:, :length]
    return np.pad(ids, ((0, 0), (0, length - ids.shape[1])), constant_values=PAD_ID)


def anchor_samples(z: np.ndarray, assign: np.ndarray, anchors: np.ndarray, per_anchor: int, rng: np.random.Generator) -> np.ndarray:
    """Latents a_k + sigma_k eps: (m, per_anchor, d); sigma_k = per-dimension std of the latents owned by
    anchor k (0.5 when it owns fewer than 2). Without anchors: prior samples N(0, I), shape (1, n, d)."""
    if len(anchors) == 0:
        return rng.standard_normal((1, per_anchor, z.shape[1])).astype(np.float32)
    out = np.empty((len(anchors), per_anchor, z.shape[1]), np.float32)
    for k, a in enumerate(anchors):
        own = z[assign == k]
        sigma = own.std(0) if len(own) > 1 else np.full(z.shape[1], 0.5, np.float32)
        out[k] = a + sigma * rng.standard_normal((per_anchor, z.shape[1]))
    return out


def interpolation_pairs(z: np.ndarray, y: np.ndarray, split: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` pairs of test-sample indices, of different labels where labels exist."""
    test = np.flatnonzero(split == 1)
    pool = test if len(test) >= 2 else np.arange(len(z))
    pairs = []
    for _ in range(count):
        i = int(rng.choice(pool))
        others = pool[(y[pool] != y[i])] if (y >= 0).any() and (y[pool] != y[i]).any() else pool[pool != i]
        pairs.append((i, int(rng.choice(others))))
    return pairs


@register_evaluator("text", families=("nvc",))
def evaluate_text(run: Any, dataset: Any, per_anchor: int = 5, steps: int = 7, pairs: int = 4) -> dict[str, Any]:
    """Metrics on the test split and text samples written to the run folder (see module docstring)."""
    model, emb = run.model, run.embeddings
    tok = run_tokenizer(run, dataset)
    test = np.flatnonzero(np.asarray(dataset.split) == 1)
    idx = test if len(test) else np.arange(len(dataset))
    metrics: dict[str, Any] = token_metrics(model, dataset.x[torch.as_tensor(idx)], seed=run.config.train.seed)
    if not emb or run.run_dir is None:
        return metrics
    rng = np.random.default_rng(run.config.train.seed)
    z, assign, anchors = emb["z"], emb["assign"], emb["anchors"]
    y, split = emb["y"], emb["split"]
    run_dir = Path(run.run_dir)
    figures = run_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    render = TextRenderer(tok)

    # samples around each anchor (or from the prior)
    latents = anchor_samples(z, assign, anchors, per_anchor, rng)
    ids = greedy_text(model, latents.reshape(-1, z.shape[1])).reshape(*latents.shape[:2], -1)
    lines = []
    for k in range(latents.shape[0]):
        head = f"anchor {k} ({int((assign == k).sum())} latents)" if len(anchors) else "prior N(0, I)"
        if len(anchors) and (y >= 0).any() and (assign == k).any():
            labels, counts = np.unique(y[assign == k], return_counts=True)
            names = dataset.meta.get("class_names") or []
            top = int(labels[np.argmax(counts)])
            head += f", majority label {names[top] if top < len(names) else top} ({counts.max() / counts.sum():.0%})"
        lines += [head] + [f"  {s}" for s in tok.decode(ids[k])] + [""]
    (run_dir / "text_samples.txt").write_text("\n".join(lines))
    render_lines(lines, figures / "text_samples.png", "decoder(a_k + sigma_k eps), greedy")

    # interpolations between test sentences
    lines = []
    for a, b in interpolation_pairs(z, y, split, pairs, rng):
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        path_ids = greedy_text(model, (1 - t) * z[a] + t * z[b])
        src = tok.decode(dataset.x[[a, b]])
        lines += [f"from: {src[0]}", *[f"  {s:.2f}  {txt}" for s, txt in zip(t[:, 0], tok.decode(path_ids))], f"to:   {src[1]}", ""]
    (run_dir / "text_interpolations.txt").write_text("\n".join(lines))
    render_lines(lines, figures / "text_interpolations.png", "greedy decoding along (1 - t) z_a + t z_b")

    # reconstructions of test sentences
    pick = rng.choice(idx, size=min(10, len(idx)), replace=False)
    rec = greedy_text(model, z[pick])
    lines = []
    for src, out in zip(tok.decode(dataset.x[torch.as_tensor(pick)]), tok.decode(rec)):
        lines += [f"input: {src}", f"recon: {out}", ""]
    (run_dir / "text_reconstructions.txt").write_text("\n".join(lines))
    rec = fit_length(rec, dataset.x.shape[1])
    render(np.stack([dataset.x[torch.as_tensor(pick)].numpy(), rec]), figures / "text_reconstructions.png",
           "rows: test input / greedy reconstruction of mu")
    metrics["text_files"] = ["text_samples.txt", "text_interpolations.txt", "text_reconstructions.txt"]
    return metrics
