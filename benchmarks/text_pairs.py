"""Which word pairs to make tokens (``--data-option ngrams=2``): the LSA-100 probe of the bag-of-words
encoder's input by the pair floor, on the text dev sets in ../shared/data.

For each data set and each floor f (a pair becomes a token when at least max(2, ceil(f n)) of the n
training texts hold it; ``nebula.data.tokenize.PAIR_MIN_DF`` is the default), the data are loaded as the
library loads them (``ngrams=2``, vocabulary and pairs fitted on the training split; ``words`` is
``ngrams=1``), each text becomes the bag the default encoder reads (sublinear, L2-normalised tf-idf of its
tokens with the training split's idf, ``nebula.nn.bow.tfidf_matrix``), and the bag is reduced to LSA-100
(truncated SVD fitted on the training split). The read-out is the linear probe of the models
(``nebula.evaluate.probes.probe_scores``, train -> test split). No training: seconds per set.

    OMP_NUM_THREADS=1 python -m benchmarks.text_pairs
    OMP_NUM_THREADS=1 python -m benchmarks.text_pairs --datasets trec --floors 0,0.002
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.text import DATASETS

FLOORS = (0.0, 0.001, 0.002, 0.005, 0.01)


def bag_probe(ds: Any, dim: int = 100, seed: int = 0) -> float:
    """LSA-``dim`` linear probe of the encoder's tf-idf bags of ``ds`` (module docstring)."""
    import torch
    from sklearn.decomposition import TruncatedSVD

    from nebula.evaluate.probes import probe_scores
    from nebula.nn.bow import idf_weights, tfidf_matrix

    x = tfidf_matrix(torch.as_tensor(np.asarray(ds.x)), idf_weights(ds.meta))
    split = np.asarray(ds.split)
    svd = TruncatedSVD(min(dim, x.shape[1] - 1), random_state=seed).fit(x[split == 0])
    return float(probe_scores(svd.transform(x), np.asarray(ds.y), split, seed=seed)["linear_probe"])


def main(argv: list[str] | None = None) -> int:
    from nebula.data import load, tokenize

    p = argparse.ArgumentParser(prog="python -m benchmarks.text_pairs", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="trec,sms,searchsnippets,stackoverflow")
    p.add_argument("--floors", default=",".join(map(str, FLOORS)), help="pair floors f (fractions of the training texts)")
    args = p.parse_args(argv)
    floors = [float(f) for f in args.floors.split(",") if f]
    started = common.machine_info()
    print(common.header("word-pair floor: LSA-100 probe of the encoder's bag", started), flush=True)
    default = tokenize.PAIR_MIN_DF
    results: dict[str, Any] = {}
    rows = []
    try:
        for name in [n for n in args.datasets.split(",") if n]:
            path = DATASETS[name][0]
            if not path.exists():
                print(f"-- {name}: {path} not found, skipped", flush=True)
                continue
            words = load(str(path))
            res = {"words": {"tokens": int(words.meta["vocab_size"]), "probe": bag_probe(words)}}
            for f in floors:
                tokenize.PAIR_MIN_DF = f
                ds = load(str(path), options={"ngrams": 2})
                res[str(f)] = {"tokens": int(ds.meta["vocab_size"]), "pairs": int(ds.meta["vocab_size"] - words.meta["vocab_size"]),
                               "probe": bag_probe(ds)}
            results[name] = res
            rows.append([name, f"{res['words']['probe']:.3f}",
                         *(f"{res[str(f)]['probe']:.3f} ({res[str(f)]['pairs']})" for f in floors)])
            print(f"  {name}: {res}", flush=True)
    finally:
        tokenize.PAIR_MIN_DF = default
    print(common.table(["set", "words", *(f"pairs, f = {f:g}" for f in floors)], rows))
    path = common.write_result("text-pairs", {"floors": floors, "default": default, "datasets": results}, started)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
