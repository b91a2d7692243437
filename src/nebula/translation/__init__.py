"""Machine translation with NVC sentence latents: ``method = translation`` (docs/translation.md).

``model``: the Transformer encoder-decoder with the sentence latent; ``decode``: greedy and beam search;
``callbacks``: learning-rate warm-up; ``method``: the registration; ``api``: ``translate(run, sentences)``;
``config``: the ``translation`` config section.
"""
