"""Sequence encoders and decoders for text: a sentence VAE in the style of Bowman et al. (2016).

Inputs are (N, L) int64 token ids ``<bos> w_1 .. w_n <eos> <pad>..`` (``<pad>`` = 0, see
:mod:`nebula.data.tokenize`). Options come from ``model.options`` (filled by the text modality's
``configure`` from the dataset: vocab_size, max_length, special ids; plus the network sizes):

    embedding_dim, rnn_hidden, rnn_layers, bidirectional   encoder (embedding_dim = D and the embedding
                                                           starts from the vectors of ``vectors=FILE``)
    decoder_hidden, word_dropout, z_every_step, tie_embedding (share the encoder's embedding),
    tie_output (output layer = embedding matrix, Press & Wolf 2017)     decoder
    transformer_heads, transformer_layers                  transformer encoder / decoder

Encoders (``gru``, ``lstm``, ``transformer``): x (N, L) -> h (N, feature_dim), h = tanh(W [states]).
Decoders (``gru``, ``lstm``; ``transformer`` causal): z (N, d_in) -> logits (N, L, V) aligned with the
target: position t scores token t. Position 0 (always <bos>) is not scored; greedy decoding forces it.
  * with ``target`` (training, likelihood): teacher forcing on target[:, :-1], whose non-special words
    are replaced by <unk> with probability ``word_dropout`` in training mode (Bowman et al.'s word
    dropout, which makes the decoder rely on z);
  * without ``target`` (generation): greedy decoding from <bos>; after <eos> a sample emits <pad>.
z initialises the RNN state (h_0 = tanh(W_z z)) and, with ``z_every_step``, is also concatenated to
every input embedding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nebula.data.tokenize import sequence_ids
from nebula.errors import ConfigError
from nebula.registry import register

DEFAULTS: dict[str, Any] = {
    "embedding_dim": 128, "rnn_hidden": 256, "rnn_layers": 1, "bidirectional": True, "decoder_hidden": 256,
    "word_dropout": 0.3, "z_every_step": True, "tie_embedding": False, "tie_output": True, "transformer_heads": 4,
    "transformer_layers": 2, "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3,
}
#: logit given to every non-forced token at forced positions (<bos> at t = 0, <pad> after <eos>)
FORCED_LOGIT = -1e4


def text_options(cfg: Any, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """model.options merged over :data:`DEFAULTS`; checks the text facts are there."""
    opts = {**DEFAULTS, **dict(getattr(cfg, "options", {}) or {})}
    if "vocab_size" not in opts:
        raise ConfigError("model.options.vocab_size is not set: sequence networks need text data "
                          "(--modality text) whose vocabulary fills it")
    if len(input_shape) != 1:
        raise ConfigError(f"sequence networks expect token ids shaped (N, L), found samples shaped {tuple(input_shape)}")
    opts["max_length"] = int(input_shape[0])
    return opts


def _rnn(cell: str) -> type[nn.RNNBase]:
    if cell not in ("gru", "lstm"):
        raise ConfigError(f"RNN cell must be gru or lstm, found {cell!r}")
    return nn.GRU if cell == "gru" else nn.LSTM


class RNNEncoder(nn.Module):
    """x: (N, L) ids -> embedding -> GRU/LSTM -> state at the last non-pad token (<eos>) -> tanh(Linear)
    -> (N, feature_dim).

    Bidirectional: a second stack reads each sequence reversed within its length (pads stay at the end),
    h = [h_fwd(last token); h_bwd(first token)]. Sequences are run padded (outputs at positions <= the
    last token do not depend on later pads) rather than packed: on CPU a packed RNN's backward pass
    zero-fills the whole packed gate tensor once per time step, several times slower.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, layers: int, bidirectional: bool,
                 feature_dim: int, dropout: float = 0.0, cell: str = "gru", pad_id: int = 0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        rnn = _rnn(cell)
        drop = dropout if layers > 1 else 0.0
        self.rnn = rnn(embedding_dim, hidden, layers, batch_first=True, dropout=drop)
        self.rnn_reverse = rnn(embedding_dim, hidden, layers, batch_first=True, dropout=drop) if bidirectional else None
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), feature_dim)
        self.pad_id = pad_id
        self.out_features = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = sequence_ids(x)
        n, length = ids.shape
        lengths = (ids != self.pad_id).sum(1).clamp_min(1)
        rows = torch.arange(n, device=ids.device)
        last = lengths - 1
        out, _ = self.rnn(self.dropout(self.embedding(ids)))
        states = [out[rows, last]]
        if self.rnn_reverse is not None:
            t = torch.arange(length, device=ids.device).unsqueeze(0)
            reverse = torch.where(t < lengths.unsqueeze(1), last.unsqueeze(1) - t, t)
            out_r, _ = self.rnn_reverse(self.dropout(self.embedding(ids.gather(1, reverse))))
            states.append(out_r[rows, last])
        return torch.tanh(self.proj(torch.cat(states, 1)))


class TransformerTextEncoder(nn.Module):
    """x: (N, L) ids -> token + learned position embeddings -> Transformer encoder (padding masked) ->
    mean over non-pad positions -> tanh(Linear) -> (N, feature_dim)."""

    def __init__(self, vocab_size: int, max_length: int, embedding_dim: int, heads: int, layers: int,
                 feature_dim: int, dropout: float = 0.0, pad_id: int = 0) -> None:
        super().__init__()
        if embedding_dim % heads:
            raise ConfigError(f"model.options.embedding_dim ({embedding_dim}) must be divisible by transformer_heads ({heads})")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.position = nn.Embedding(max_length, embedding_dim)
        layer = nn.TransformerEncoderLayer(embedding_dim, heads, 2 * embedding_dim, dropout, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.proj = nn.Linear(embedding_dim, feature_dim)
        self.pad_id = pad_id
        self.out_features = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = sequence_ids(x)
        pad = ids == self.pad_id
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.transformer(self.embedding(ids) + self.position(pos), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return torch.tanh(self.proj(pooled))


class _TextDecoder(nn.Module):
    """Shared parts: forced logits, word dropout, greedy-decoding bookkeeping."""

    def __init__(self, vocab_size: int, max_length: int, word_dropout: float, ids: dict[str, int]) -> None:
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        self.word_dropout = float(word_dropout)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = ids["pad_id"], ids["unk_id"], ids["bos_id"], ids["eos_id"]

    def forced(self, n: int, token: int, like: torch.Tensor) -> torch.Tensor:
        """(n, 1, V) logits that put all mass on ``token``."""
        out = torch.full((n, 1, self.vocab_size), FORCED_LOGIT, dtype=like.dtype, device=like.device)
        out[:, :, token] = 0.0
        return out

    def shifted_inputs(self, target: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs (N, L): [<pad>, target_0 .. target_{L-2}] with word dropout, so that the
        output at position t (which sees target_<t) scores target_t; position 0 (it sees no token and
        would score the fixed <bos>) is not scored by the loss. Computing all L positions in one pass
        avoids concatenating an (N, 1, V) <bos> block to the (N, L-1, V) logits."""
        ids = sequence_ids(target)
        inputs = torch.cat([torch.full_like(ids[:, :1], self.pad_id), ids[:, :-1]], 1)
        return self.drop_words(inputs)

    def drop_words(self, inputs: torch.Tensor) -> torch.Tensor:
        """Replace non-special tokens of the decoder inputs (N, T) by <unk> with prob. word_dropout (training)."""
        if not self.training or self.word_dropout <= 0:
            return inputs
        word = inputs > max(self.pad_id, self.unk_id, self.bos_id, self.eos_id)
        drop = (torch.rand(inputs.shape, device=inputs.device) < self.word_dropout) & word
        return inputs.masked_fill(drop, self.unk_id)

    def greedy(self, z: torch.Tensor, step) -> torch.Tensor:
        """Greedy decoding: ``step(input token (N,), t, state) -> (logits (N, V), state)`` is called with the
        inputs <pad>, <bos>, then each argmax; returns (N, L, V) logits (<bos> forced at position 0)."""
        n = z.shape[0]
        token = torch.full((n,), self.bos_id, dtype=torch.long, device=z.device)
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        outputs = [self.forced(n, self.bos_id, z)]
        pad_logits = self.forced(n, self.pad_id, z)[:, 0]
        # position 0 sees the <pad> start input, exactly as in teacher forcing (see shifted_inputs)
        _, state = step(torch.full_like(token, self.pad_id), 0, None)
        for t in range(1, self.max_length):
            logits, state = step(token, t, state)
            if t == self.max_length - 1:  # the last position holds <eos> unless the text ended before
                eos = self.forced(n, self.eos_id, z)[:, 0]
                logits = eos
            logits = torch.where(done.unsqueeze(1), pad_logits, logits)
            outputs.append(logits.unsqueeze(1))
            token = logits.argmax(-1)
            done = done | (token == self.eos_id)
        return torch.cat(outputs, 1)


class RNNDecoder(_TextDecoder):
    """z: (N, d_in) -> logits (N, L, V); GRU or LSTM, teacher forcing with ``target``, greedy without."""

    def __init__(self, in_features: int, vocab_size: int, max_length: int, embedding_dim: int, hidden: int,
                 layers: int, word_dropout: float, z_every_step: bool, ids: dict[str, int], dropout: float = 0.0,
                 cell: str = "gru", embedding: nn.Embedding | None = None, tie_output: bool = True) -> None:
        super().__init__(vocab_size, max_length, word_dropout, ids)
        self.embedding = embedding if embedding is not None else nn.Embedding(vocab_size, embedding_dim, padding_idx=ids["pad_id"])
        emb_dim = self.embedding.embedding_dim
        self.cell, self.layers, self.hidden = cell, layers, hidden
        self.z_every_step = bool(z_every_step)
        self.init = nn.Linear(in_features, hidden * layers)
        self.rnn = _rnn(cell)(emb_dim + (in_features if z_every_step else 0), hidden, layers, batch_first=True,
                              dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.tie_output = bool(tie_output)
        if self.tie_output:  # logits = E (W_o h) + b: the output layer shares the (V, emb) embedding matrix
            self.out = nn.Linear(hidden, emb_dim)
            self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.out = nn.Linear(hidden, vocab_size)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., H) -> logits (..., V)."""
        if self.tie_output:
            return nn.functional.linear(self.out(h), self.embedding.weight, self.out_bias)
        return self.out(h)

    def initial_state(self, z: torch.Tensor):
        h0 = torch.tanh(self.init(z)).view(z.shape[0], self.layers, self.hidden).transpose(0, 1).contiguous()
        return (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0

    def _inputs(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        e = self.dropout(self.embedding(tokens))
        if self.z_every_step:
            e = torch.cat([e, z.unsqueeze(1).expand(-1, tokens.shape[1], -1).to(e.dtype)], -1)
        return e

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        if target is None:
            return self.generate(z)
        out, _ = self.rnn(self._inputs(self.shifted_inputs(target), z), self.initial_state(z))
        return self.project(self.dropout(out))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: (N, d_in) -> (N, L, V) logits (forced <bos> first, <pad> after <eos>)."""
        def step(token, t, state):
            state = self.initial_state(z) if state is None else state
            out, state = self.rnn(self._inputs(token.unsqueeze(1), z), state)
            return self.project(out[:, 0]), state

        return self.greedy(z, step)


class TransformerTextDecoder(_TextDecoder):
    """Causal Transformer decoder: token + position embeddings plus W_z z at every position (a prefix-free
    conditioning), causal self-attention; teacher forcing with ``target``, greedy without."""

    def __init__(self, in_features: int, vocab_size: int, max_length: int, embedding_dim: int, heads: int, layers: int,
                 word_dropout: float, ids: dict[str, int], dropout: float = 0.0) -> None:
        super().__init__(vocab_size, max_length, word_dropout, ids)
        if embedding_dim % heads:
            raise ConfigError(f"model.options.embedding_dim ({embedding_dim}) must be divisible by transformer_heads ({heads})")
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=ids["pad_id"])
        self.position = nn.Embedding(max_length, embedding_dim)
        self.z_proj = nn.Linear(in_features, embedding_dim)
        layer = nn.TransformerEncoderLayer(embedding_dim, heads, 2 * embedding_dim, dropout, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(embedding_dim, vocab_size)

    def _logits(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        pos = torch.arange(length, device=tokens.device)
        h = self.embedding(tokens) + self.position(pos) + self.z_proj(z).unsqueeze(1)
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device, dtype=h.dtype)
        return self.out(self.transformer(h, mask=mask, is_causal=True))

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        if target is None:
            return self.generate(z)
        return self._logits(self.shifted_inputs(target), z)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy decoding (re-runs the prefix each step; L is small): (N, d_in) -> (N, L, V)."""
        def step(token, t, state):
            prefix = token.unsqueeze(1) if state is None else torch.cat([state, token.unsqueeze(1)], 1)
            return self._logits(prefix, z)[:, -1], prefix

        return self.greedy(z, step)


# --------------------------------------------------------------------------- registry
def _rnn_encoder(cell: str):
    def build(input_shape: tuple[int, ...], cfg: Any) -> RNNEncoder:
        o = text_options(cfg, input_shape)
        from nebula.nn.bow import TEXT_INIT

        vectors = TEXT_INIT.get(str(o.get("text_init")), {}).get("vectors")  # --data-option vectors=FILE
        dim = int(vectors.shape[1]) if vectors is not None else int(o.get("vectors_dim") or o["embedding_dim"])
        enc = RNNEncoder(int(o["vocab_size"]), dim, int(o["rnn_hidden"]), int(o["rnn_layers"]),
                         bool(o["bidirectional"]), int(cfg.feature_dim), float(cfg.dropout), cell, int(o["pad_id"]))
        if vectors is not None:
            with torch.no_grad():
                enc.embedding.weight.copy_(vectors)
        return enc

    return build


def _rnn_decoder(cell: str):
    def build(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> RNNDecoder:
        o = text_options(cfg, output_shape)
        shared = getattr(encoder, "embedding", None) if o["tie_embedding"] else None
        ids = {k: int(o[k]) for k in ("pad_id", "unk_id", "bos_id", "eos_id")}
        return RNNDecoder(in_features, int(o["vocab_size"]), int(o["max_length"]), int(o["embedding_dim"]),
                          int(o["decoder_hidden"]), int(o["rnn_layers"]), float(o["word_dropout"]), bool(o["z_every_step"]),
                          ids, float(cfg.dropout), cell, shared, bool(o["tie_output"]))

    return build


register("encoder", "gru")(_rnn_encoder("gru"))
register("encoder", "lstm")(_rnn_encoder("lstm"))
register("decoder", "gru")(_rnn_decoder("gru"))
register("decoder", "lstm")(_rnn_decoder("lstm"))


@register("encoder", "transformer")
def _transformer_encoder(input_shape: tuple[int, ...], cfg: Any) -> TransformerTextEncoder:
    o = text_options(cfg, input_shape)
    return TransformerTextEncoder(int(o["vocab_size"]), int(o["max_length"]), int(o["embedding_dim"]),
                                  int(o["transformer_heads"]), int(o["transformer_layers"]), int(cfg.feature_dim),
                                  float(cfg.dropout), int(o["pad_id"]))


@register("decoder", "transformer")
def _transformer_decoder(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> TransformerTextDecoder:
    o = text_options(cfg, output_shape)
    ids = {k: int(o[k]) for k in ("pad_id", "unk_id", "bos_id", "eos_id")}
    return TransformerTextDecoder(in_features, int(o["vocab_size"]), int(o["max_length"]), int(o["embedding_dim"]),
                                  int(o["transformer_heads"]), int(o["transformer_layers"]), float(o["word_dropout"]),
                                  ids, float(cfg.dropout))
