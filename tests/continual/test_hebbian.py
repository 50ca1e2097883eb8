"""Oja's subspace rule in HebbianSubspace: recovers a planted subspace, keeps frozen rows, learns the residual."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.continual import HebbianSubspace, orthonormality_error, project_out, subspace_error


def planted(n: int, scales: list[float], samples: int, noise: float, seed: int):
    """Samples ``x = c · B + noise`` with ``B`` a random orthonormal ``r × n`` basis; returns (x, B)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(n, len(scales), generator=g)).Q.T  # [r, n], orthonormal rows
    coeff = torch.randn(samples, len(scales), generator=g) * torch.tensor(scales)
    x = coeff @ basis + noise * torch.randn(samples, n, generator=g)
    return x, basis


def test_oja_recovers_a_planted_low_rank_subspace():
    # 5 strong directions (std 3 … 1) in R^40 plus isotropic noise of std 0.05: the top-5 principal subspace of
    # E[x xᵀ] is the planted one up to ~noise²/λ_min ≈ 0.3 %.
    x, basis = planted(40, [3.0, 2.5, 2.0, 1.5, 1.0], samples=2048, noise=0.05, seed=0)
    g = torch.Generator().manual_seed(1)
    h = HebbianSubspace(40, lr=0.02, iterations=5)
    h.add_rows(5, generator=g)
    before = float(subspace_error(h.weight, basis))
    for epoch in range(20):
        for batch in x[torch.randperm(len(x), generator=g)].split(64):
            h.update(batch)
    err = float(subspace_error(h.weight, basis))
    assert before > 0.5  # random start: far from the planted subspace
    assert err < 0.02
    assert float(orthonormality_error(h.weight)) < 0.02
    # Hᵀ H is then (nearly) the projector onto the planted subspace: data keep ~all their energy
    resid = x - (x @ h.weight.T) @ h.weight
    assert float((resid ** 2).sum() / (x ** 2).sum()) < 0.01


def test_frozen_rows_stay_and_new_rows_learn_the_residual_subspace():
    # Task A lives in span(B[:3]), task B in span(B[:6]); after A's rows are merged, B's new rows learn B[3:6].
    n = 30
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(n, 6, generator=g)).Q.T  # [6, n]
    xa = (torch.randn(2048, 3, generator=g) * torch.tensor([3.0, 2.0, 1.5])) @ basis[:3]
    xb = (torch.randn(2048, 6, generator=g) * torch.tensor([2.0, 2.0, 2.0, 3.0, 2.0, 1.5])) @ basis
    h = HebbianSubspace(n, lr=0.02)
    h.add_rows(3, generator=g)
    for _ in range(10):
        for batch in xa.split(64):
            h.update(batch)
    h.merge()
    old = h.weight.clone()
    assert h.num_frozen == 3 and float(subspace_error(old, basis[:3])) < 0.02
    h.add_rows(3, generator=g)
    assert float((h.learning @ old.T).abs().max()) < 1e-5  # new rows start orthogonal to the old ones
    for _ in range(10):
        for batch in xb.split(64):
            h.update(batch)
    assert torch.equal(h.frozen, old)  # frozen rows never move
    assert float(subspace_error(h.learning, basis[3:])) < 0.03  # the residual subspace, not B[:3] again
    assert float(subspace_error(h.weight, basis)) < 0.03
    assert float(orthonormality_error(h.weight)) < 0.03


def test_nothing_to_learn_without_learning_rows():
    h = HebbianSubspace(4)
    h.update(torch.ones(3, 4))  # no rows: a no-op
    assert h.num_rows == 0
    h.add_rows(2)
    h.merge()
    before = h.weight.clone()
    h.update(torch.randn(8, 4))
    assert torch.equal(h.weight, before)


def test_add_rows_refuses_more_rows_than_inputs():
    h = HebbianSubspace(5)
    h.add_rows(4)
    with pytest.raises(ValueError, match=r"cannot add 2 subspace rows: 4 exist .*at most 1 more"):
        h.add_rows(2)
    with pytest.raises(ValueError, match="integer >= 0"):
        h.add_rows(-1)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        HebbianSubspace(0)
    with pytest.raises(ValueError, match="Hebbian lr must be positive"):
        HebbianSubspace(3, lr=0.0)
    with pytest.raises(ValueError, match="momentum must be in"):
        HebbianSubspace(3, momentum=1.0)
    h = HebbianSubspace(3)
    h.add_rows(1)
    with pytest.raises(ValueError, match=r"x of shape \[M, 3\], got \(2, 4\)"):
        h.update(torch.zeros(2, 4))


def test_too_large_a_rate_is_reported_as_divergence():
    h = HebbianSubspace(50, lr=5.0, momentum=0.0, clamp=1e30)  # the clamp (10) would keep it finite
    h.add_rows(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(FloatingPointError, match="lower the Hebbian lr"):
        for _ in range(50):
            h.update(10 * torch.randn(16, 50))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 12), k=st.integers(1, 12), rows=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_project_out_leaves_nothing_in_an_orthonormal_subspace(n, k, rows, seed):
    k = min(k, n)
    g = torch.Generator().manual_seed(seed)
    h = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64)).Q.T  # k orthonormal rows
    grad = torch.randn(rows, n, generator=g, dtype=torch.float64)
    p = project_out(grad, h)
    assert torch.allclose(p @ h.T, torch.zeros(rows, k, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(project_out(p, h), p, atol=1e-10)  # a projector: applying it twice changes nothing


def test_load_state_dict_round_trips_and_refuses_another_layout_changing_nothing():
    h = HebbianSubspace(6, lr=0.1)
    h.add_rows(3, generator=torch.Generator().manual_seed(0))
    h.update(torch.randn(20, 6, generator=torch.Generator().manual_seed(1)))
    h.merge()
    h.add_rows(1, generator=torch.Generator().manual_seed(2))
    state = h.state_dict()
    twin = HebbianSubspace(6, lr=0.1, dtype=torch.float64)
    twin.load_state_dict(state)
    assert twin.weight.dtype == torch.float64 and twin.num_frozen == 3 and twin.num_rows == 4
    assert torch.equal(twin.weight.float(), h.weight) and torch.equal(twin.velocity.float(), h.velocity)
    twin.weight.add_(1.0)
    assert not torch.equal(twin.weight.float(), state["weight"])  # a copy, not the state's tensor

    def bad(**change):
        return {**h.state_dict(), **change}

    target = HebbianSubspace(6, lr=0.1)
    cases = [
        ({"weight": h.weight}, r"has keys \['weight'\], expected \['weight', 'velocity', 'num_frozen'\]"),
        (bad(weight=torch.zeros(4, 5)), r"subspace weight is \(4, 5\).* have 6 entries"),
        (bad(velocity=torch.zeros(3, 6)), r"velocity is \(3, 6\), expected the weight's \(4, 6\)"),
        (bad(num_frozen=5), r"num_frozen must be an integer in \[0, 4\].*got 5"),
        (bad(num_frozen=True), r"num_frozen must be an integer.*got True"),
        (bad(weight=torch.full((4, 6), float("nan"))), "NaN or inf"),
        ([1, 2], "expected a HebbianSubspace state dict, got list"),
    ]
    for state_, message in cases:
        with pytest.raises(ValueError, match=message):
            target.load_state_dict(state_)
        assert target.num_rows == 0 and target.num_frozen == 0  # unchanged


def test_rows_that_grow_under_too_large_a_rate_are_divergence_though_the_clamp_keeps_them_finite():
    """HLOP's default rate (0.03) on the event digits' first layer (578 event counts per step, squared norm ~8,400):
    the clamp kept H finite, so nothing was said, but its rows grew to norm 11 (‖HHᵀ − I‖/√k ≈ 100), and HLOP's
    projection with them left every later task at chance. Stable rates keep the rows at unit length."""
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((64, 578), 1.8), generator=g)  # event counts, squared norm ~ 578 · (1.8 + 1.8²)
    h = HebbianSubspace(578, lr=0.03)  # the defaults: momentum 0.9, clamp 10
    h.add_rows(8, generator=g)
    with pytest.raises(FloatingPointError, match=r"lr 0.03 is too large for inputs of squared norm ~2.92e\+03; its "
                                                 r"rows, which Oja's rule keeps at unit length, reached norm [0-9.]+.*"
                                                 r"lower the Hebbian lr \(a rate near 1 / that squared norm, ~0.00034"):
        for _ in range(20):
            h.update(x)
    stable = HebbianSubspace(578, lr=0.0003)  # as the message says: the rows learn and stay orthonormal
    stable.add_rows(8, generator=g)
    for _ in range(20):
        stable.update(x)
    assert float(stable.weight.norm(dim=1).max()) < 1.2 and float(orthonormality_error(stable.weight)) < 0.3
