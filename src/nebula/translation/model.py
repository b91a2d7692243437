"""TranslationModel: a Transformer encoder-decoder with an optional NVC sentence latent.

Source ids x (N, Ls) and target ids y (N, Lt) laid out ``<bos> .. <eos> <pad> ..`` (pad = 0). The
encoder gives states H (N, Ls, d); their mean over non-pad positions h (N, d) feeds the sentence latent
(variants vae / tvae / nvc-ml; none for plain):

    z = mu(h) + sigma(h) * eps  (Gaussian head; deterministic z = mu for ae / tae)
    c = W z                      (N, d), reaching the decoder besides attention: as one extra memory
                                 token [c; H] and/or added to every decoder input embedding
                                 (``translation.condition`` memory / input / both)

Per batch, with T the number of scored target tokens and B sentences (per-sentence terms are divided
by the mean sentence length T / B, so every term is per target token):

    L = CE_ls / T + (beta_t KL + w_c L_anchor + w_m L_metric) * B / T

CE_ls the label-smoothed cross-entropy summed over tokens; KL = sum_i KL(q(z|x_i) || N(0, I)) / B;
the anchor and metric terms those of :class:`~nebula.nvc.loss.NebulaLoss` on the posterior means mu
(pseudo-labels = nearest anchor), switched on when the anchors are placed (AnchorPlacement callback).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nebula.latent.gaussian import DeterministicHead, GaussianHead, mean_kl_standard_normal, warmup_weight
from nebula.nvc.loss import NebulaLoss
from nebula.train.contract import ModelOutput, StepInfo

PAD, BOS, EOS = 0, 2, 3


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal position encodings."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


def trim(ids: torch.Tensor) -> torch.Tensor:
    """(N, L) ids cut to the longest non-pad row (batches of short sentences skip the padding columns)."""
    keep = int((ids != PAD).sum(1).max()) if ids.numel() else 1
    return ids[:, : max(keep, 1)]


class TranslationModel(nn.Module):
    """Encoder-decoder of :class:`~nebula.translation.config.TranslationConfig` ``tc`` with the latent of the
    ``model`` / ``loss`` sections (model.variational, model.use_anchors, loss.metric_order ...).

    Args:
        src_vocab, tgt_vocab: vocabulary sizes; shared: one embedding for both sides (joint vocabulary).
        pretrain_epochs: epochs before the anchors are placed; anchor_init: their placement (kmeans, random).
        max_positions: the longest sequence the position table covers.
    """

    def __init__(self, tc: Any, model: Any, loss: Any, src_vocab: int, tgt_vocab: int, shared: bool,
                 pretrain_epochs: int = 0, anchor_init: str = "kmeans", max_positions: int = 1024) -> None:
        super().__init__()
        self.tc, self.mc, self.lc = tc, model, loss
        d = int(tc.d_model)
        self.d_model, self.tgt_vocab = d, int(tgt_vocab)
        self.src_embed = nn.Embedding(src_vocab, d, padding_idx=PAD)
        self.tgt_embed = self.src_embed if shared and src_vocab == tgt_vocab else nn.Embedding(tgt_vocab, d, padding_idx=PAD)
        self.register_buffer("positions", sinusoids(max_positions, d), persistent=False)
        layer = dict(d_model=d, nhead=int(tc.heads), dim_feedforward=int(tc.ff_dim), dropout=float(tc.dropout),
                     batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), int(tc.encoder_layers),
                                             norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), int(tc.decoder_layers), norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, tgt_vocab, bias=False)
        if tc.tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        self.dropout = nn.Dropout(float(tc.dropout))
        self.has_latent = bool(model.variational or model.use_anchors)
        self.head = None
        self.anchors: NebulaLoss | None = None
        # what NVC's AnchorPlacement reads: the pseudo-labels (auto = nearest anchor) and no partition targets
        self.pseudo_labels = "nearest" if loss.pseudo_labels == "auto" else loss.pseudo_labels
        self.targets = None
        if self.has_latent:
            self.head = (GaussianHead if model.variational else DeterministicHead)(d, int(model.latent_dim))
            self.z_proj = nn.Linear(int(model.latent_dim), d)
            if model.use_anchors:
                if loss.pseudo_labels == "partition":
                    raise ValueError("loss.pseudo_labels=partition needs a t-SNE placement, which translation runs do not use")
                self.anchors = NebulaLoss(
                    model.num_anchors, model.latent_dim, anchor_loss=loss.anchor_loss, anchor_weight=loss.anchor_weight,
                    repulsion_weight=loss.repulsion_weight, repulsion_distance=loss.repulsion_distance,
                    metric_order=loss.metric_order, metric_form=loss.metric_form, metric_weight=loss.metric_weight,
                    metric_margin=loss.metric_margin, hinge_margin=loss.hinge_margin, pseudo_labels=self.pseudo_labels,
                    balance_epsilon=loss.balance_epsilon, reseed_dead=loss.reseed_dead)
        self.pretrain_epochs, self.anchor_init = int(pretrain_epochs), anchor_init
        self.placement_map = "input"  # read by the AnchorPlacement callback; only tsne placements use it
        self.placement_cut = "kmeans"
        self.register_buffer("anchors_ready", torch.tensor(self.anchors is None or self.pretrain_epochs == 0))
        self.architecture = {"encoder": f"transformer-{tc.encoder_layers}x{d}", "decoder": f"transformer-{tc.decoder_layers}x{d}",
                             "reconstruction": "token_ce (label smoothing)", "latent": "none" if not self.has_latent else
                             f"{'gaussian' if model.variational else 'deterministic'} {model.latent_dim}, condition {tc.condition}"}
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() > 1 and "anchors" not in name:
                nn.init.xavier_uniform_(p)
        nn.init.normal_(self.src_embed.weight, std=self.d_model ** -0.5)
        if self.tgt_embed is not self.src_embed:
            nn.init.normal_(self.tgt_embed.weight, std=self.d_model ** -0.5)

    # ------------------------------------------------------------------ building blocks
    def _embed(self, table: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return table(ids) * math.sqrt(self.d_model) + self.positions[offset : offset + ids.shape[1]]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, Ls) -> (states (N, Ls', d), key padding mask (N, Ls') True at pads, pooled h (N, d)); Ls' trimmed."""
        x = trim(x)
        pad = x == PAD
        states = self.encoder(self.dropout(self._embed(self.src_embed, x)), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(states.dtype)
        pooled = (states * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return states, pad, pooled

    def latent(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(z, mu, log_sigma) of the sentence latent, each (N, k) (log_sigma None when deterministic)."""
        return self.head(pooled)

    def condition(self, z: torch.Tensor | None) -> torch.Tensor | None:
        """c = W z (N, d), or None without a latent."""
        return self.z_proj(z) if z is not None and self.has_latent else None

    def memory(self, states: torch.Tensor, pad: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's memory: [c; H] with c one extra (never padded) token when conditioning on memory."""
        if cond is None or self.tc.condition == "input":
            return states, pad
        return torch.cat([cond.unsqueeze(1), states], 1), torch.cat([pad.new_zeros(len(pad), 1), pad], 1)

    def logits(self, prefix: torch.Tensor, memory: torch.Tensor, mem_pad: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Decoder logits (N, T, V) for target prefixes (N, T) (causal: position t sees tokens <= t)."""
        h = self._embed(self.tgt_embed, prefix)
        if cond is not None and self.tc.condition in ("input", "both"):
            h = h + cond.unsqueeze(1)
        length = prefix.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=prefix.device).triu(1)
        h = self.decoder(self.dropout(h), memory, tgt_mask=causal, memory_key_padding_mask=mem_pad)
        return self.out(h)

    # ------------------------------------------------------------------ incremental decoding (eval mode)
    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        n, length, d = t.shape
        h = int(self.tc.heads)
        return t.view(n, length, h, d // h).transpose(1, 2)

    def start_cache(self, memory: torch.Tensor, mem_pad: torch.Tensor) -> dict[str, Any]:
        """Per-layer cross-attention keys / values of the memory (N, heads, S, d / heads), computed once,
        and empty self-attention caches: what :meth:`step_logits` extends one position at a time."""
        d = self.d_model
        cache: dict[str, Any] = {"step": 0, "keep": (~mem_pad)[:, None, None, :], "mem": [], "self": []}
        for layer in self.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k, v = F.linear(memory, w[d:], b[d:]).chunk(2, -1)
            cache["mem"].append((self._heads(k), self._heads(v)))
            cache["self"].append(None)
        return cache

    @staticmethod
    def reorder_cache(cache: dict[str, Any], rows: torch.Tensor) -> None:
        """Keep the cached rows ``rows`` (N',) (beam search: the surviving hypotheses' parents)."""
        cache["self"] = [(k[rows], v[rows]) for k, v in cache["self"]]

    def step_logits(self, tokens: torch.Tensor, cache: dict[str, Any], cond: torch.Tensor | None) -> torch.Tensor:
        """Logits (N, V) of the next position given the last tokens (N,) and the cache of the earlier ones:
        the decoder layers of :meth:`logits` (pre-norm, eval mode) with cached keys and values, so step t costs
        O(t) attention instead of re-running the decoder on the whole prefix."""
        d, t = self.d_model, cache["step"]
        h = self.tgt_embed(tokens)[:, None] * math.sqrt(d) + self.positions[t]
        if cond is not None and self.tc.condition in ("input", "both"):
            h = h + cond.unsqueeze(1)
        for i, layer in enumerate(self.decoder.layers):
            sa, ca = layer.self_attn, layer.multihead_attn
            q, k, v = (self._heads(p) for p in F.linear(layer.norm1(h), sa.in_proj_weight, sa.in_proj_bias).chunk(3, -1))
            if cache["self"][i] is not None:
                k, v = torch.cat([cache["self"][i][0], k], 2), torch.cat([cache["self"][i][1], v], 2)
            cache["self"][i] = (k, v)
            h = h + sa.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(len(h), 1, d))
            q = self._heads(F.linear(layer.norm2(h), ca.in_proj_weight[:d], ca.in_proj_bias[:d]))
            a = F.scaled_dot_product_attention(q, *cache["mem"][i], attn_mask=cache["keep"])
            h = h + ca.out_proj(a.transpose(1, 2).reshape(len(h), 1, d))
            h = h + layer.linear2(layer.activation(layer.linear1(layer.norm3(h))))
        cache["step"] = t + 1
        return self.out(self.decoder.norm(h)[:, 0])

    def prepare(self, x: torch.Tensor, z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What decoding needs for sources x (N, Ls): (memory, memory pad mask, c), with z = mu(x) unless given (N, k)."""
        states, pad, pooled = self.encode(x)
        if z is None and self.has_latent:
            z = self.latent(pooled)[1]
        cond = self.condition(z)
        memory, mem_pad = self.memory(states, pad, cond)
        return memory, mem_pad, cond

    # ------------------------------------------------------------------ method contract
    def forward(self, batch: dict[str, torch.Tensor], info: StepInfo | None = None) -> ModelOutput:
        info = info or StepInfo()
        lc = self.lc
        target = trim(batch["target"])
        states, pad, pooled = self.encode(batch["x"])
        z = mu = log_sigma = None
        if self.has_latent:
            z, mu, log_sigma = self.latent(pooled)
        cond = self.condition(z)
        memory, mem_pad = self.memory(states, pad, cond)
        logits = self.logits(target[:, :-1], memory, mem_pad, cond)
        gold = target[:, 1:]
        tokens = (gold != PAD).sum().clamp_min(1)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), gold.reshape(-1), ignore_index=PAD,
                             label_smoothing=float(self.tc.label_smoothing), reduction="sum")
        total = ce / tokens
        terms: dict[str, torch.Tensor] = {"rec": total.detach()}
        per_token = len(gold) / tokens  # 1 / mean target length: sentence terms become per-token terms
        labels = None
        if log_sigma is not None:
            terms["kl"] = mean_kl_standard_normal(mu, log_sigma)
            beta = lc.beta * warmup_weight(info.global_step, lc.kl_warmup_epochs * info.steps_per_epoch)
            total = total + beta * per_token * terms["kl"]
        if self.anchors is not None and bool(self.anchors_ready):
            nebula = self.anchors(mu if lc.anchor_input == "mu" else z)
            terms.update(nebula.terms)
            total = total + per_token * nebula.loss
            labels = nebula.labels
        return ModelOutput(loss=total, terms=terms, z=z, mu=mu, pseudo_labels=labels)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """mu (N, k) of the sentence latent, or the pooled encoder states h (N, d) for plain runs."""
        pooled = self.encode(x)[2]
        return self.latent(pooled)[1] if self.has_latent else pooled

    @torch.no_grad()
    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """z (N, k) = embed(x), assign (N,) nearest anchor (-1 without), rec (N,) per-token NLL of the
        target given mu (teacher forcing, no smoothing)."""
        states, pad, pooled = self.encode(x)
        z = self.latent(pooled)[1] if self.has_latent else pooled
        cond = self.condition(z)
        memory, mem_pad = self.memory(states, pad, cond)
        target = trim(target)
        logits = self.logits(target[:, :-1], memory, mem_pad, cond)
        gold = target[:, 1:]
        nll = F.cross_entropy(logits.transpose(1, 2).float(), gold, ignore_index=PAD, reduction="none").sum(1)
        assign = self.anchors.assign(z) if self.anchors is not None else torch.full((len(z),), -1, dtype=torch.long, device=z.device)
        return {"z": z, "assign": assign, "rec": nll / (gold != PAD).sum(1).clamp_min(1)}

    def anchor_array(self) -> torch.Tensor | None:
        return self.anchors.anchors.detach() if self.anchors is not None else None

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Network and anchors (no weight decay on the anchors)."""
        anchor_params = list(self.anchors.parameters()) if self.anchors is not None else []
        ids = {id(p) for p in anchor_params}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids], "lr": lr, "weight_decay": weight_decay,
                   "name": "network"}]
        if anchor_params:
            groups.append({"params": anchor_params, "lr": lr, "weight_decay": 0.0, "name": "anchors"})
        return groups

    def callbacks(self) -> list[Any]:
        """Learning-rate warm-up; with anchors NVC's AnchorPlacement and DeadAnchors."""
        from nebula.nvc.callbacks import AnchorPlacement, DeadAnchors
        from nebula.translation.callbacks import LinearWarmup

        out: list[Any] = [LinearWarmup(int(self.tc.warmup_steps))]
        return [*out, AnchorPlacement(), DeadAnchors()] if self.anchors is not None else out
