"""Few-label probe: a linear classifier on frozen features from ``labels_per_class`` labels per class,
FixMatch-style pseudo-labels on the unlabelled training features, with or without operator-sampled feature
augmentations (docs/methods.md section 2.8).

Per trial t (seeded): pick ``labels_per_class`` labelled training samples per class; train
W: (D -> classes) on standardised features for ``steps`` full-batch Adam steps with

    L = CE(W aug(x_l), y_l) + lambda_u mean_u [ max p(W x_u) >= tau ] CE(W aug(x_u), argmax p(W x_u)),

where the pseudo-label comes from the un-augmented ("weak") feature and aug(.) is either a draw from a bank
of ``num_views`` operator augmentations T(c) z, c ~ p(c | z) (mode ``operators``) or the identity (mode
``none``, plain self-training). Both modes of one trial share the labelled set and the initial weights, so
their accuracy difference is paired; its standard error is std(diff) / sqrt(trials).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F


@contextmanager
def single_thread() -> Iterator[None]:
    """Run tiny tensor work on one thread (faster than a thread pool for these sizes, much faster on a busy
    machine); restores the previous thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pick_labelled(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random samples of every class present in ``y`` (fewer if a class is small)."""
    picks = [rng.choice(np.flatnonzero(y == c), size=min(per_class, int((y == c).sum())), replace=False)
             for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


@torch.no_grad()
def augmentation_bank(z: torch.Tensor, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
                      num_views: int, generator: torch.Generator, chunk: int = 4096) -> torch.Tensor:
    """(V, N, D) feature augmentations augment(z) drawn ``num_views`` times, computed in chunks."""
    views = []
    for _ in range(num_views):
        views.append(torch.cat([augment(z[i : i + chunk], generator) for i in range(0, len(z), chunk)]))
    return torch.stack(views)


def train_probe(x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, bank_l: torch.Tensor | None,
                bank_u: torch.Tensor | None, num_classes: int, generator: torch.Generator, steps: int = 200,
                lr: float = 1e-2, weight_decay: float = 1e-3, tau: float = 0.95, lambda_u: float = 1.0,
                unlabelled_batch: int = 1024) -> torch.nn.Linear:
    """Train the linear probe (see module docstring). x_*: standardised features; bank_*: (V, N, D) augmented
    standardised features or None (identity)."""
    g_init = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    clf = torch.nn.Linear(x_l.shape[1], num_classes)
    with torch.no_grad():
        clf.weight.copy_(torch.randn(clf.weight.shape, generator=g_init) * 0.01)
        clf.bias.zero_()
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        if bank_l is not None:
            v = torch.randint(0, len(bank_l), (len(x_l),), generator=generator)
            inp_l = bank_l[v, torch.arange(len(x_l))]
        else:
            inp_l = x_l
        loss = F.cross_entropy(clf(inp_l), y_l)
        if lambda_u > 0 and len(x_u):
            idx = torch.randint(0, len(x_u), (min(unlabelled_batch, len(x_u)),), generator=generator)
            with torch.no_grad():
                prob = F.softmax(clf(x_u[idx]), dim=1)
                conf, pseudo = prob.max(1)
                mask = (conf >= tau).float()
            if bank_u is not None:
                v = torch.randint(0, len(bank_u), (len(idx),), generator=generator)
                strong = bank_u[v, idx]
            else:
                strong = x_u[idx]
            loss = loss + lambda_u * (mask * F.cross_entropy(clf(strong), pseudo, reduction="none")).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clf


def fewshot_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                  augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                  labels_per_class: int = 5, trials: int = 10, seed: int = 0, num_views: int = 8,
                  steps: int = 200, tau: float = 0.95, lambda_u: float = 1.0) -> dict[str, object]:
    """Run the few-label probe in mode ``none`` and, when ``augment`` (z (n, D), generator -> (n, D)) is
    given, in mode ``operators``.

    Returns per-mode accuracy lists and means/stds, and for ``operators`` minus ``none`` the mean paired
    difference and its standard error.
    """
    if trials < 1:
        raise ValueError(f"fewshot trials must be >= 1, found {trials}")
    zt = torch.as_tensor(z_train, dtype=torch.float32)
    ze = torch.as_tensor(z_test, dtype=torch.float32)
    mean, std = zt.mean(0), zt.std(0) + 1e-6
    classes, y_tr = np.unique(y_train, return_inverse=True)
    lookup = {c: i for i, c in enumerate(classes)}
    y_te = np.array([lookup.get(c, -1) for c in y_test])
    keep = y_te >= 0
    xs_train, xs_test = (zt - mean) / std, (ze[keep] - mean) / std
    y_test_t = torch.as_tensor(y_te[keep])
    bank = None
    if augment is not None:
        bank = (augmentation_bank(zt, augment, num_views, torch.Generator().manual_seed(seed + 1)) - mean) / std
    modes = ["none"] + (["operators"] if bank is not None else [])
    acc: dict[str, list[float]] = {m: [] for m in modes}
    with single_thread():
        _run_trials(acc, modes, trials, seed, labels_per_class, y_tr, xs_train, xs_test, y_test_t, bank, len(classes),
                    steps, tau, lambda_u)
    out: dict[str, object] = {"labels_per_class": labels_per_class, "trials": trials}
    for m in modes:
        a = np.array(acc[m])
        out[f"fewshot_{m}_accuracy"] = acc[m]
        out[f"fewshot_{m}_mean"] = float(a.mean())
        out[f"fewshot_{m}_std"] = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    if "operators" in modes:
        diff = np.array(acc["operators"]) - np.array(acc["none"])
        out["fewshot_gain_mean"] = float(diff.mean())
        out["fewshot_gain_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return out


def _run_trials(acc: dict[str, list[float]], modes: list[str], trials: int, seed: int, labels_per_class: int,
                y_tr: np.ndarray, xs_train: torch.Tensor, xs_test: torch.Tensor, y_test_t: torch.Tensor,
                bank: torch.Tensor | None, num_classes: int, steps: int, tau: float, lambda_u: float) -> None:
    """The seeded trials of :func:`fewshot_probe`; appends test accuracies to ``acc[mode]``."""
    for t in range(trials):
        rng = np.random.default_rng(seed * 1000 + t)
        lab = pick_labelled(y_tr, labels_per_class, rng)
        unl = np.setdiff1d(np.arange(len(y_tr)), lab)
        lab_t, unl_t = torch.as_tensor(lab), torch.as_tensor(unl)
        for m in modes:
            gen = torch.Generator().manual_seed(seed * 1000 + t)
            bl = bank[:, lab_t] if m == "operators" else None
            bu = bank[:, unl_t] if m == "operators" else None
            clf = train_probe(xs_train[lab_t], torch.as_tensor(y_tr[lab]), xs_train[unl_t], bl, bu, num_classes, gen,
                              steps=steps, tau=tau, lambda_u=lambda_u)
            with torch.no_grad():
                acc[m].append(float((clf(xs_test).argmax(1) == y_test_t).float().mean()))
