"""Surrogate spike functions: exact Heaviside forward, derivative checked against its primitive."""

import pytest
import torch

from neurosim.functional import SURROGATES, Surrogate, heaviside, spike


class _Smooth(torch.autograd.Function):
    """Forward = the surrogate's primitive g, backward = its stated derivative g' (checked by gradcheck)."""

    @staticmethod
    def forward(ctx, x, sur):
        ctx.save_for_backward(x)
        ctx.sur = sur
        return sur.primitive(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.sur.grad(x), None


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_surrogate_derivative_passes_gradcheck(name, alpha):
    sur = Surrogate(name, alpha)
    # Points spread over the surrogate's support, avoiding the kinks of triangle/rectangle (|x| = 1/α, α/2).
    x = (torch.linspace(-1.37, 1.41, 23, dtype=torch.float64) / sur.alpha).requires_grad_(True)
    if name == "rectangle":
        x = (torch.linspace(-0.43, 0.47, 19, dtype=torch.float64) * sur.alpha).requires_grad_(True)
    assert torch.autograd.gradcheck(_Smooth.apply, (x, sur), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_spike_forward_is_exact_heaviside_and_backward_is_surrogate(name):
    sur = Surrogate(name)
    x = torch.tensor([-2.0, -0.3, -1e-9, 0.0, 1e-9, 0.4, 3.0], dtype=torch.float64, requires_grad=True)
    s = spike(x, sur)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    s.backward(torch.ones_like(s))
    torch.testing.assert_close(x.grad, sur.grad(x.detach()))
    assert torch.equal(heaviside(x.detach(), strict=True), torch.tensor([0, 0, 0, 0, 1, 1, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_inplace_grad_equals_grad(name):
    sur = Surrogate(name, 1.7)
    x = torch.randn(200, dtype=torch.float64)
    torch.testing.assert_close(sur.grad_(x.clone()), sur.grad(x))


def test_triangle_is_the_sltt_surrogate():
    # SLTT (Meng et al. 2023): g'(x) = max(0, α − α²|x|) with α = 1.
    sur = Surrogate("triangle")
    assert sur.grad(torch.tensor([0.0, 0.5, -0.5, 1.0, 2.0])).tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]


def test_bad_surrogate_is_named():
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        Surrogate("relu")
    with pytest.raises(ValueError, match="alpha must be a positive"):
        Surrogate("atan", -1.0)


def test_a_surrogate_object_is_taken_by_the_neuron_modules_and_a_non_name_is_a_type_error():
    from neurosim.nn import LIF, RLIF

    s = Surrogate("triangle", 1.0)
    assert LIF(surrogate=s).surrogate == s and RLIF(3, surrogate=s).lif.surrogate == s
    with pytest.raises(ValueError, match="already has its alpha"):
        LIF(surrogate=s, surrogate_alpha=2.0)
    with pytest.raises(TypeError, match="must be a string such as 'triangle', got Surrogate"):
        Surrogate(s)
