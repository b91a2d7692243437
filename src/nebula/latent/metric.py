"""Self-supervised metric learning on pseudo-labels (the reference's -r "orders"), from N x N matrices.

Labels are the nearest-anchor pseudo-labels c (or true labels with ``supervised``).
P_ij = [c_i = c_j and j != i], Q_ij = [c_i != c_j], D2_ij = ||z_i - z_j||^2.

Every triplet form sums over (i, j, k) without materialising N x N x N tensors (the reference's bug R3):
for a fixed anchor i the sum over positives j and negatives k factorises (ratio form) or reduces to a
sorted prefix sum (hinge form). A batch without a valid triplet gives 0, not NaN (bug R4), and j = i
is never a positive (bug R5).
"""

from __future__ import annotations

import torch
from torch import nn

from nebula.latent.anchors import squared_distances


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, Q) boolean (N, N): same label excluding the diagonal, and different label."""
    same = labels.view(-1, 1) == labels.view(1, -1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def pairwise_sq_distances(z: torch.Tensor) -> torch.Tensor:
    """D2: (N, N) squared Euclidean distances with an exact zero diagonal."""
    d2 = squared_distances(z, z)
    return d2 * (1.0 - torch.eye(len(z), dtype=z.dtype, device=z.device))


def anchor_pull_loss(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Order 1: mean_i D_{i, c_i}. dist: (N, m), labels: (N,) in [0, m)."""
    return dist.gather(1, labels.view(-1, 1)).mean()


def intra_cluster_loss(d2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Order 2: mean_ij D2_ij P_ij over all N^2 pairs (intra-cluster pull)."""
    pos, _ = pair_masks(labels)
    return (d2 * pos).mean()


def ratio_triplet_loss(d2: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Order 3: mean over valid triplets (P_ij Q_ik = 1) of D2_ij / (D2_ik + nu).

    sum_{j,k} P_ij Q_ik D2_ij / (D2_ik + nu) = (sum_j P_ij D2_ij) (sum_k Q_ik / (D2_ik + nu)), so the loss
    is sum_i a_i b_i / sum_i |P_i| |Q_i| with O(N^2) memory. ``margin`` is the fixed nu.
    """
    pos, neg = pair_masks(labels)
    a = (d2 * pos).sum(1)
    b = (neg / (d2 + margin)).sum(1)
    count = pos.sum(1).to(d2.dtype) @ neg.sum(1).to(d2.dtype)
    if count == 0:
        return d2.sum() * 0.0
    return (a * b).sum() / count


#: elements of one (rows x N) block of the fused ratio loss (1 MB of float32: stays in cache)
BLOCK_ELEMENTS = 1 << 18


class _RatioTriplet(torch.autograd.Function):
    """Order-3 ratio loss L = sum_i a_i b_i / T for z: (N, d), labels: (N,), in one function (no autograd graph).

    a_i = sum_j P_ij D2_ij needs no N x N matrix: for class c with n_c members, sum S_c and mean mu_c,
    a_i = n_c ||z_i - mu_c||^2 + V_c with V_c = sum_{j in c} ||z_j - mu_c||^2 (parallel-axis theorem).
    b_i = sum_k Q_ik / (D2_ik + nu): samples sorted by class, one matmul ||z_k||^2 - 2 z_i.z_k, then per
    cache-sized block of rows, in place: + ||z_i||^2 + nu, clamp at nu (D2 >= 0), same-class entries set
    to +inf (1 / inf = 0), reciprocal -> W, b = W 1, W squared -> S (the only N x N tensor kept, symmetric).
    T = sum_c n_c (n_c - 1) (N - n_c) valid triplets (L = 0 when T = 0: then every a_i b_i is 0).

    Backward (g = dL/dL): through a, with b fixed,
    dL/dz_k = 2 [(n_c b_k + B_c) z_k - b_k S_c - R_c] / T, B_c = sum_{i in c} b_i, R_c = sum_{i in c} b_i z_i;
    through b, with a fixed (dL/dD2_ik = -a_i S_ik / T),
    dL/dz = -2 [(a * S 1 + S a) * z - a * (S z) - S (a * z)] / T, all four products from one matmul of S
    with [z, a * z, a, 1], the class sums from one index_add of [z, b z, b, 1]. z is centred first (L is
    translation-invariant, the shift cancels). About 30 tensor operations forward and 20 backward, whatever N.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, labels: torch.Tensor, nu: float) -> torch.Tensor:  # noqa: D102
        n, d = z.shape
        order, cls, counts = _sort_by_class(labels)
        zs = z.index_select(0, order)
        zc = zs - zs.mean(0)
        n_c = counts.to(z.dtype)
        size = n_c[cls]
        means = torch.zeros(len(counts), d, dtype=z.dtype, device=z.device).index_add_(0, cls, zc).div_(n_c.unsqueeze(1))
        dev = (zc - means[cls]).square_().sum(1)
        a = torch.zeros_like(n_c).index_add_(0, cls, dev)[cls].addcmul_(size, dev)
        sq = zc.square().sum(1)
        w = torch.addmm(sq.unsqueeze(0), zc, zc.T, alpha=-2.0)  # ||z_k||^2 - 2 z_i.z_k
        b = torch.empty(n, dtype=z.dtype, device=z.device)
        col = (sq + nu).unsqueeze(1)
        step = max(1, BLOCK_ELEMENTS // max(n, 1))
        for s in range(0, n, step):
            wb = w[s : s + step]
            wb.add_(col[s : s + step]).clamp_min_(nu)
            wb.masked_fill_(cls[s : s + step].unsqueeze(1) == cls, float("inf")).reciprocal_()
            torch.sum(wb, 1, out=b[s : s + step])
            wb.square_()
        sizes = counts.tolist()
        triplets = max(1.0, float(sum(c * (c - 1) * (n - c) for c in sizes)))
        ctx.triplets, ctx.classes = triplets, len(sizes)
        ctx.save_for_backward(zc, w, a, b, cls, order)
        return a.dot(b) / triplets

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        zc, s, a, b, cls, order = ctx.saved_tensors
        d = zc.shape[1]
        a1, b1 = a.unsqueeze(1), b.unsqueeze(1)
        ones = torch.ones_like(a1)
        prod = s @ torch.cat([zc, a1 * zc, a1, ones], 1)  # S z, S (a z), S a, S 1
        # per class: S_c = sum z, R_c = sum b z, B_c = sum b, n_c, gathered back to every sample
        per = torch.zeros(ctx.classes, 2 * d + 2, dtype=zc.dtype, device=zc.device).index_add_(
            0, cls, torch.cat([zc, b1 * zc, b1, ones], 1))[cls]
        coef = per[:, 2 * d + 1] * b + per[:, 2 * d] - a * prod[:, 2 * d + 1] - prod[:, 2 * d]
        out = (coef.unsqueeze(1) * zc).addcmul_(a1, prod[:, :d]).add_(prod[:, d : 2 * d])
        out.addcmul_(b1, per[:, :d], value=-1.0).sub_(per[:, d : 2 * d]).mul_(grad * (2.0 / ctx.triplets))
        return torch.empty_like(out).index_copy_(0, order, out), None, None


def _sort_by_class(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(order (N,), class index of each sorted sample (N,) in [0, C), class sizes (C,)): ``labels[order]`` is
    sorted, so every class is a contiguous run."""
    sorted_labels, order = torch.sort(labels.view(-1), stable=True)
    _, cls, counts = torch.unique_consecutive(sorted_labels, return_inverse=True, return_counts=True)
    return order, cls, counts


def _group_by_class(z: torch.Tensor, labels: torch.Tensor):
    """None when there is no valid triplet, else (z sorted by class (N, d), class boundaries [0, ..., N]
    (C + 1 ints), number of valid triplets T = sum_c n_c (n_c - 1) (N - n_c) as a 0-d tensor of z's dtype)."""
    order, _, counts = _sort_by_class(labels)
    n_c = counts.to(z.dtype)
    count = (n_c * (n_c - 1.0) * (len(z) - n_c)).sum()
    if count == 0:
        return None
    return z.index_select(0, order), [0, *torch.cumsum(counts, 0).tolist()], count


def ratio_triplet_loss_from_latents(z: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Order 3 straight from z: (N, d), equal to ``ratio_triplet_loss(pairwise_sq_distances(z), labels, margin)``.

    One :class:`_RatioTriplet` call: O(N^2 d) time, one N x N float buffer + O(N d) memory, and a
    fixed number of tensor operations whatever the number of classes (no autograd graph).
    """
    return _RatioTriplet.apply(z, labels, float(margin))


def hinge_triplet_loss(d2: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean over valid triplets of max(0, D2_ij - D2_ik + margin), O(N^2 log N) time, O(N^2) memory.

    For anchor i and positive j the negatives k with D2_ik < D2_ij + margin contribute
    (D2_ij + margin) - D2_ik: with row-sorted negative distances that is
    count_ij (D2_ij + margin) - prefix_sum_i(count_ij), found with searchsorted.
    """
    pos, neg = pair_masks(labels)
    n_valid = pos.sum(1).to(d2.dtype) @ neg.sum(1).to(d2.dtype)
    if n_valid == 0:
        return d2.sum() * 0.0
    big = d2.detach().max() + abs(margin) + 1.0
    neg_d = torch.where(neg, d2, big)
    sorted_neg, _ = torch.sort(neg_d, dim=1)
    prefix = torch.cat([sorted_neg.new_zeros(len(d2), 1), sorted_neg.cumsum(1)], dim=1)
    thresh = d2 + margin
    count = torch.searchsorted(sorted_neg.detach().contiguous(), thresh.detach().contiguous(), right=False)
    total = count.to(d2.dtype) * thresh - prefix.gather(1, count)
    return (total * pos).sum() / n_valid


class _HingeTripletSum(torch.autograd.Function):
    """S = sum_i sum_{j in P_i} sum_{k in Q_i} max(0, D2_ij - D2_ik + m) for z: (N, d) sorted by class.

    Forward, per class block of rows (C iterations, each vectorised): the row's positive thresholds
    t_ij = D2_ij + m are sorted (n_c per row, the diagonal set to -inf), and every negative distance is
    located among them with searchsorted: p_ik = #{j : t_ij <= D2_ik}. Negative k is active for exactly
    the positives at sorted positions >= p_ik, so per-row histograms of p (counts and distance sums,
    scatter_add) turned into cumulative sums give, for every positive pair, cnt_ij = #{k active} and
    s_ij = sum of their D2_ik; the pair contributes cnt_ij t_ij - s_ij. No N x N sort is needed.
    The gradient of S with respect to D2 is G_ij = cnt_ij on positives and G_ik = -(n_c - p_ik) on
    negatives; G overwrites the distance buffer row block by row block, so one N x N matrix is kept.
    Backward: D2_ij = ||z_i||^2 + ||z_j||^2 - 2 z_i.z_j gives dS/dz = 2 [(G 1 + G^T 1) * z - G z - G^T z].
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, bounds: list[int], margin: float) -> torch.Tensor:  # noqa: D102
        zc = z - z.mean(0)
        g = squared_distances(zc, zc)
        total = torch.zeros((), dtype=torch.float64, device=z.device)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            rows = g[lo:hi]
            n_c = hi - lo
            if n_c < 2 or n_c == len(g):
                rows.zero_()
                continue
            neg = torch.cat([rows[:, :lo], rows[:, hi:]], dim=1)
            eye = torch.eye(n_c, dtype=torch.bool, device=z.device)
            thresh = (rows[:, lo:hi] + margin).masked_fill_(eye, float("-inf"))
            sorted_t, perm = torch.sort(thresh, dim=1)
            place = torch.searchsorted(sorted_t, neg, right=True)  # >= 1: the -inf diagonal is below all
            cnt = torch.zeros(n_c, n_c + 1, dtype=z.dtype, device=z.device).scatter_add_(1, place, torch.ones_like(neg))
            sums = torch.zeros(n_c, n_c + 1, dtype=torch.float64, device=z.device).scatter_add_(1, place, neg.double())
            cnt, sums = cnt.cumsum_(1)[:, :n_c], sums.cumsum_(1)[:, :n_c]  # position r: negatives with p <= r
            finite = sorted_t[:, 1:].double()
            total += (cnt[:, 1:].double() * finite - sums[:, 1:]).sum()
            active = (n_c - place).to(z.dtype)
            rows[:, :lo] = -active[:, :lo]
            rows[:, hi:] = -active[:, lo:]
            rows[:, lo:hi] = torch.zeros_like(cnt).scatter_(1, perm, cnt)
        ctx.save_for_backward(zc, g)
        return total.to(z.dtype)

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):  # noqa: D102
        zc, g = ctx.saved_tensors
        weight = (g.sum(1) + g.sum(0)).unsqueeze(1)
        grad = 2.0 * (weight * zc - g @ zc - g.T @ zc)
        return grad * grad_s, None, None


def hinge_triplet_loss_from_latents(z: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hinge triplet straight from z: (N, d), equal to ``hinge_triplet_loss(pairwise_sq_distances(z), labels, margin)``.

    Samples are grouped by class and :class:`_HingeTripletSum` works one class block of rows at a time,
    so no autograd graph over N x N tensors is built: O(N^2 log N) time, one N x N buffer.
    """
    grouped = _group_by_class(z, labels)
    if grouped is None:
        return z.sum() * 0.0
    zs, bounds, count = grouped
    return _HingeTripletSum.apply(zs, bounds, float(margin)) / count


class PseudoLabelMetricLoss(nn.Module):
    """The reference's -r orders: 1 anchor pull, 2 intra-cluster pull, 3 triplet, -1 = 1 + 3.

    ``form`` picks the triplet used by orders 3 and -1: ``ratio`` (the reference's D2_ij/(D2_ik+nu), nu
    fixed) or ``hinge`` (max(0, D2_ij - D2_ik + margin)).
    """

    def __init__(self, order: int, form: str = "ratio", margin: float = 1.0, hinge_margin: float = 1.0) -> None:
        super().__init__()
        if order not in (1, 2, 3, -1):
            raise ValueError(f"metric order must be 1, 2, 3 or -1, found {order}")
        self.order, self.form, self.margin, self.hinge_margin = order, form, margin, hinge_margin

    def forward(self, z: torch.Tensor, labels: torch.Tensor, dist: torch.Tensor | None = None,
                pull: torch.Tensor | None = None) -> torch.Tensor:
        """z: (N, d), labels: (N,) int64, dist: (N, m) anchor distances (needed by orders 1, -1);
        ``pull``: ``anchor_pull_loss(dist, labels)`` when the caller has it already."""
        if self.order in (1, -1) and dist is None:
            raise ValueError("metric orders 1 and -1 need anchor distances")
        if self.order in (1, -1) and pull is None:
            pull = anchor_pull_loss(dist, labels)
        if self.order == 1:
            return pull
        if self.order in (3, -1):  # fused paths, no N x N autograd graph
            if self.form == "ratio":
                loss = ratio_triplet_loss_from_latents(z, labels, self.margin)
            else:
                loss = hinge_triplet_loss_from_latents(z, labels, self.hinge_margin)
            return loss + pull if self.order == -1 else loss
        d2 = pairwise_sq_distances(z)
        return intra_cluster_loss(d2, labels)
