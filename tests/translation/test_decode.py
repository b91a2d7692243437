"""Decoding: beam 1 equals greedy, beams are well formed, a tiny copy task is learnt exactly."""

from __future__ import annotations

import torch

from nebula.config import Config
from nebula.translation.decode import beam_search, greedy
from nebula.translation.model import EOS, PAD, TranslationModel


def _model(variant: str | None = None) -> TranslationModel:
    cfg = Config()
    if variant:
        cfg.apply_variant(variant)
    else:
        cfg.model.variational = cfg.model.use_anchors = False
    t = cfg.translation
    t.d_model, t.ff_dim, t.heads, t.encoder_layers, t.decoder_layers = 32, 64, 2, 1, 2
    torch.manual_seed(0)
    return TranslationModel(t, cfg.model, cfg.loss, 40, 40, True).eval()


def _sources(n: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(4, 40, (n, 9), generator=g)
    x[:, 0] = 2
    lengths = torch.randint(3, 9, (n,), generator=g)
    for i, k in enumerate(lengths.tolist()):
        x[i, k] = EOS
        x[i, k + 1 :] = PAD
    return x


def test_beam_one_equals_greedy_with_and_without_latent():
    for variant in (None, "nvc-ml"):
        model, x = _model(variant), _sources()
        g, b = greedy(model, x, limit=12), beam_search(model, x, beam=1, limit=12)
        assert torch.equal(g, b), variant


def test_beam_search_output_is_well_formed_and_scores_at_least_greedy():
    model, x = _model(), _sources()
    out = beam_search(model, x, beam=4, alpha=0.0, limit=12)
    assert out.shape[0] == len(x)
    for row in out:  # after <eos> only <pad>
        ends = (row == EOS).nonzero()
        if len(ends):
            assert (row[int(ends[0]) + 1 :] == PAD).all()

    def logprob(seqs: torch.Tensor) -> torch.Tensor:
        memory, pad, cond = model.prepare(x)
        prefix = torch.cat([torch.full((len(x), 1), 2), seqs], 1)
        logp = model.logits(prefix[:, :-1], memory, pad, cond).log_softmax(-1)
        tok = prefix[:, 1:]
        keep = torch.ones_like(tok, dtype=torch.bool)
        for i, row in enumerate(tok):  # score up to and including the first <eos>
            ends = (row == EOS).nonzero()
            if len(ends):
                keep[i, int(ends[0]) + 1 :] = False
        return (logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1) * keep).sum(1)

    with torch.no_grad():
        g = greedy(model, x, limit=12)
        width = max(g.shape[1], out.shape[1])
        pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
        assert (logprob(pad(out)) >= logprob(pad(g)) - 1e-4).all()


def test_cached_steps_equal_the_full_decoder():
    for variant in (None, "vae"):
        model, x = _model(variant), _sources()
        memory, pad, cond = model.prepare(x)
        prefix = torch.randint(4, 40, (len(x), 6))
        prefix[:, 0] = 2
        with torch.no_grad():
            full = model.logits(prefix, memory, pad, cond)
            cache = model.start_cache(memory, pad)
            steps = torch.stack([model.step_logits(prefix[:, t], cache, cond) for t in range(6)], 1)
        torch.testing.assert_close(steps, full, atol=1e-4, rtol=1e-4)
