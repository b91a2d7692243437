"""Contrastive self-supervised learning: SimCLR and ManifoldCLR (docs/methods.md section 2).

Blocks: :mod:`augment` (two-view image augmentations), :mod:`backbones` (small CNN, ResNet-18),
:mod:`heads` (projection heads), :mod:`losses` (NT-Xent), :mod:`learner` (the model), :mod:`method` (its registration),
:mod:`fewshot` (few-label probe), :mod:`commands` (``nebula contrastive``) and :mod:`config` (its config section).
"""
