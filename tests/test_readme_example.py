"""The README's building-block example runs as written and clusters the digits."""

from __future__ import annotations

import numpy as np
from benchmarks.building_block import readme_example, run_example
from sklearn.datasets import load_digits

from nebula.evaluate.metrics import hungarian_accuracy


def test_readme_building_block_example_runs_and_clusters_digits():
    assert "nebula.NebulaLoss(" in readme_example()
    scope = run_example(0)
    labels = scope["labels"].numpy()
    assert labels.shape == (1797,) and set(np.unique(labels)) <= set(range(10))
    assert hungarian_accuracy(load_digits().target, labels) > 0.6  # k-means on the raw pixels: ~0.79
