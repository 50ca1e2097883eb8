"""Spike function with surrogate gradients.

The forward pass is exactly the Heaviside step ``H(x)`` of ``x = v − v_th``; the backward pass replaces its
derivative (a Dirac delta) by the derivative ``g'(x)`` of a smooth "primitive" ``g`` of the same name
(Neftci, Mostafa & Zenke, IEEE SPM 2019). Every surrogate here is a pair (primitive, derivative) so the
derivative can be checked against the primitive with ``torch.autograd.gradcheck``.

Surrogates (``alpha`` is the sharpness, larger = narrower support, except for ``rectangle``, where it is the
window's width as in STBP (Wu et al., 2018); the defaults follow the libraries users come from):

- ``atan``: g = 1/2 + arctan(π/2·α·x)/π, g' = α/2 / (1 + (π/2·α·x)²); default α = 2
- ``sigmoid``: g = σ(α·x), g' = α·σ(αx)·(1 − σ(αx)); default α = 4
- ``fast_sigmoid``: g = 1/2 + x / (1 + α|x|), g' = 1 / (1 + α|x|)²; default α = 25
- ``triangle``: g = 1/2 + αx − α²x|x|/2 for |x| < 1/α (else H(x)), g' = max(0, α − α²|x|); default α = 1
- ``rectangle``: g = clamp(1/2 + x/α, 0, 1), g' = 1/α where |x| < α/2, else 0; default α = 1

``atan`` and ``fast_sigmoid`` use snnTorch's scaling (``surrogate.atan(alpha=2)``,
``surrogate.fast_sigmoid(slope=25)``) so gradients match models ported from it; ``triangle`` with α = 1
is the SLTT paper's surrogate (Meng et al., ICCV 2023); ``sigmoid`` α = 4 is SpikingJelly's default.

Example:
    >>> import torch
    >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    >>> s = spike(x, Surrogate("triangle", 1.0))
    >>> s.tolist()
    [0.0, 1.0, 1.0]
    >>> s.sum().backward()
    >>> x.grad.tolist()
    [0.5, 1.0, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SURROGATES", "Surrogate", "heaviside", "spike"]

# name -> default alpha; the single list of supported surrogates.
SURROGATES: dict[str, float] = {
    "atan": 2.0,
    "sigmoid": 4.0,
    "fast_sigmoid": 25.0,
    "triangle": 1.0,
    "rectangle": 1.0,
}


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative for the spike non-linearity.

    Args:
        name: one of ``atan``, ``sigmoid``, ``fast_sigmoid``, ``triangle``, ``rectangle``.
        alpha: sharpness of the surrogate (larger = narrower), or for ``rectangle`` the window's width;
            ``None`` takes the name's default (table above).
    """

    name: str = "atan"
    alpha: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"a surrogate's name must be a string such as 'triangle', got {type(self.name).__name__} "
                            f"{self.name!r}")
        if self.name not in SURROGATES:
            raise ValueError(
                f"unknown surrogate {self.name!r}; expected one of {sorted(SURROGATES)}"
            )
        if self.alpha is None:
            object.__setattr__(self, "alpha", SURROGATES[self.name])
        alpha = float(self.alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"surrogate alpha must be a positive finite number, got {self.alpha!r}")
        object.__setattr__(self, "alpha", alpha)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """Surrogate derivative g'(x) at ``x = v − v_th``."""
        a = self.alpha
        if self.name == "atan":
            return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
        if self.name == "sigmoid":
            sg = torch.sigmoid(a * x)
            return a * sg * (1 - sg)
        if self.name == "fast_sigmoid":
            return 1.0 / (1 + a * x.abs()) ** 2
        if self.name == "triangle":
            return (a - a * a * x.abs()).clamp_min(0)
        # rectangle
        return (x.abs() < a / 2).to(x.dtype) / a

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """In-place :meth:`grad`: overwrites and returns ``x`` (saves allocations in fused kernels)."""
        a = self.alpha
        if self.name == "atan":
            return x.mul_(math.pi / 2 * a).square_().add_(1).reciprocal_().mul_(a / 2)
        if self.name == "sigmoid":
            sg = x.mul_(a).sigmoid_()
            return sg.mul_(1 - sg).mul_(a)
        if self.name == "fast_sigmoid":
            return x.abs_().mul_(a).add_(1).square_().reciprocal_()
        if self.name == "triangle":
            return x.abs_().mul_(-a * a).add_(a).clamp_min_(0)
        return x.abs_().lt_(a / 2).mul_(1 / a)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth function g whose derivative is :meth:`grad` (for checking and plotting)."""
        a = self.alpha
        if self.name == "atan":
            return 0.5 + torch.atan(math.pi / 2 * a * x) / math.pi
        if self.name == "sigmoid":
            return torch.sigmoid(a * x)
        if self.name == "fast_sigmoid":
            return 0.5 + x / (1 + a * x.abs())
        if self.name == "triangle":
            inside = 0.5 + a * x - a * a * x * x.abs() / 2
            return torch.where(x.abs() < 1 / a, inside, (x > 0).to(x.dtype))
        return (0.5 + x / a).clamp(0, 1)


def heaviside(x: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """Exact step: 1 where ``x >= 0`` (``x > 0`` if ``strict``), else 0, in ``x``'s dtype."""
    return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)


class _Spike(torch.autograd.Function):
    # forward and setup_context apart, a generated vmap rule and a jvp: torch.func's grad, vmap, jacrev, jvp and
    # jacfwd work through it
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, surrogate: Surrogate, strict: bool) -> torch.Tensor:
        return heaviside(x, strict)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, surrogate, _ = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None, None

    @staticmethod
    def jvp(ctx, x_tangent: torch.Tensor, _surrogate, _strict) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return x_tangent * ctx.surrogate.grad(x)


def spike(x: torch.Tensor, surrogate: Surrogate | str = "atan", strict: bool = False) -> torch.Tensor:
    """Heaviside forward, surrogate-gradient backward.

    Args:
        x: membrane potential minus threshold, any shape.
        surrogate: a :class:`Surrogate` or a surrogate name (default sharpness).
        strict: spike only where ``x > 0`` (snnTorch's convention) instead of ``x >= 0``.

    Returns:
        Tensor of 0/1 in ``x``'s dtype and shape.
    """
    if isinstance(surrogate, str):
        surrogate = Surrogate(surrogate)
    return _Spike.apply(x, surrogate, strict)
