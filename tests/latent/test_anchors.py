from __future__ import annotations

import torch

from nebula.latent.anchors import (
    NebulaAnchors,
    anchor_repulsion,
    nebula_gravitation_loss,
    squared_distances,
)


def test_squared_distances_brute_force():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = torch.stack([torch.stack([((a - b) ** 2).sum() for b in y]) for a in x])
    torch.testing.assert_close(squared_distances(x, y), ref)


def test_nearest_anchor_pull_and_gradient_reaches_only_nearest_anchor():
    anchors = NebulaAnchors(3, 2)
    anchors.set_anchors(torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]))
    z = torch.tensor([[1.0, 0.0], [4.0, 0.0]], requires_grad=True)
    loss = anchors.pull(z, anchors.distances(z).argmin(1))  # mean_i min_k D_ik
    assert abs(loss.item() - 1.0) < 1e-6
    loss.backward()
    grad = anchors.anchors.grad
    assert grad[2].abs().sum() == 0 and grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0


def test_pull_equals_the_assigned_distances_with_their_gradient():
    g = torch.Generator().manual_seed(1)
    anchors = NebulaAnchors(4, 3)
    anchors.set_anchors(torch.randn(4, 3, generator=g))
    z = torch.randn(9, 3, generator=g, requires_grad=True)
    assign = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3])
    pull = anchors.pull(z, assign)
    ref = anchors.distances(z).gather(1, assign[:, None]).mean()
    torch.testing.assert_close(pull, ref)
    grads = torch.autograd.grad(pull, (z, anchors.anchors))
    torch.testing.assert_close(grads, torch.autograd.grad(ref, (z, anchors.anchors)))


def test_repulsion_is_nonnegative_and_zero_beyond_target():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    rep = anchor_repulsion(a, distance=4.0)
    assert (rep >= 0).all()
    assert rep[0, 2] == 0 and rep[0, 1] > 0 and rep.diagonal().abs().sum() == 0


def test_gravitation_brute_force_and_pushes_close_anchors_apart():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(12, 2, generator=g, dtype=torch.float64)
    a = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    dist = squared_distances(z, a)
    c = dist.argmin(1)
    mass = [1 + sum(dist[i, k] for i in range(12) if c[i] == k) / 12 for k in range(3)]
    r2 = 4.0**2
    ref = []
    for k in range(3):
        for m in range(k + 1, 3):
            d = ((a[k] - a[m]) ** 2).sum()
            ref.append(mass[k] * mass[m] * (torch.log(torch.tensor(r2 + 1e-6, dtype=torch.float64)) - torch.log(torch.clamp(d, max=r2) + 1e-6)))
    expected = torch.stack(ref).mean()
    loss = nebula_gravitation_loss(dist, c, a, distance=4.0)
    torch.testing.assert_close(loss, expected)


def test_dead_anchor_splits_the_crowded_part():
    anchors = NebulaAnchors(2, 2, reseed_dead=True, dead_after=3)
    anchors.set_anchors(torch.tensor([[0.0, 0.0], [100.0, 100.0]]))
    z = torch.tensor([[0.1, 0.0], [-0.1, 0.0], [3.0, 3.0]])
    moved = [anchors.update_usage(z) for _ in range(3)]
    assert moved == [0, 0, 1]
    # midpoint of the crowded anchor (0, 0) and its farthest member (3, 3)
    torch.testing.assert_close(anchors.anchors[1].detach(), torch.tensor([1.5, 1.5]))
    assert int(anchors.reseeded) == 1 and anchors.distances(z).argmin(1).tolist() == [0, 0, 1]
    off = NebulaAnchors(2, 2, reseed_dead=False, dead_after=1)
    off.set_anchors(torch.tensor([[0.0, 0.0], [100.0, 100.0]]))
    assert off.update_usage(z) == 0 and off.anchors[1, 0].item() == 100.0


def test_balanced_assignment_keeps_balanced_nearest_labels():
    from nebula.latent.anchors import balanced_assignment, squared_distances

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = torch.cat([c + 0.3 * torch.randn(20, 2, generator=g) for c in centres])
    dist = squared_distances(z, centres)
    assert torch.equal(balanced_assignment(dist), dist.argmin(1))


def test_balanced_assignment_moves_samples_from_a_crowded_anchor():
    from nebula.latent.anchors import balanced_assignment, squared_distances

    # 30 samples nearest to anchor 0, 10 to anchor 1; the 10 of the crowd closest to anchor 1 move over
    z = torch.cat([torch.linspace(-1.0, 1.5, 30), torch.linspace(3.5, 4.5, 10)]).unsqueeze(1)
    anchors = torch.tensor([[0.0], [4.0]])
    dist = squared_distances(z, anchors)
    nearest = dist.argmin(1)
    labels = balanced_assignment(dist, epsilon=0.05)
    assert torch.bincount(nearest).tolist() == [30, 10]
    counts = torch.bincount(labels, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 4
    moved = torch.nonzero(labels != nearest).flatten()
    assert len(moved) > 0 and (z[moved, 0] >= 0.5).all()  # only the crowd's side facing anchor 1 moves
    assert balanced_assignment(dist[:0]).shape == (0,)
