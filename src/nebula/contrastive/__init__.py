"""Contrastive self-supervised learning: SimCLR and ManifoldCLR (METHODS.md section 2).

Blocks: :mod:`augment` (two-view image augmentations), :mod:`backbones` (small CNN, ResNet-18),
:mod:`heads` (projection heads), :mod:`losses` (NT-Xent), :mod:`learner` (the registered models),
:mod:`fewshot` (few-label probe) and :mod:`commands` (``nebula contrastive``).
"""
