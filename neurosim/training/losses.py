r"""Losses on output sequences ``out_seq`` of shape ``[T, B, C]`` (time, batch, classes).

* ``rate_ce``: cross-entropy on the time-averaged output, ``CE(mean_t o_t, y)`` — spikes or membrane.
* ``tet``: mean per-step cross-entropy, ``(1/T)·Σ_t CE(o_t, y)`` (Deng et al., ICLR 2022; the CE part of SLTT's loss).
* ``sltt_mix``: SLTT's loss, ``(1/T)·Σ_t [(1−λ)·CE(o_t, y) + λ·MSE(o_t, target)]`` with λ = 0.05 and an all-ones
  target by default (Meng et al., ICCV 2023; REFERENCES.md), or the one-hot label.

Per-step losses (``per_step = True``) can be evaluated one step at a time — ``step(o_t, y) / T`` summed over
``t`` equals the whole-sequence loss — which is what online methods such as SLTT need.
Predictions are always ``argmax Σ_t o_t``.

Example:
    >>> import torch
    >>> out = torch.zeros(4, 2, 3); out[:, 0, 1] = 1; out[:, 1, 2] = 1
    >>> y = torch.tensor([1, 2])
    >>> predict(out).tolist()
    [1, 2]
    >>> loss = get_loss("tet")
    >>> torch.allclose(loss(out, y), sum(loss.step(o, y) for o in out) / 4)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Loss", "RateCE", "SLTTMix", "TET", "get_loss", "predict"]


def _check(out_seq: torch.Tensor, y: torch.Tensor) -> None:
    if out_seq.dim() != 3:
        raise ValueError(f"losses expect out_seq [T, B, C], got shape {tuple(out_seq.shape)}")
    if y.shape != out_seq.shape[1:2]:
        raise ValueError(f"targets must have shape [B] = ({out_seq.shape[1]},), got {tuple(y.shape)}")


def predict(out_seq: torch.Tensor) -> torch.Tensor:
    """Class prediction ``argmax_c Σ_t o_t[c]``; shape ``[B]``."""
    return out_seq.sum(0).argmax(-1)


class Loss:
    """Base class: ``loss(out_seq, y) -> scalar``; per-step losses also offer ``step(o_t, y)``."""

    per_step = False

    def __call__(self, out_seq: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check(out_seq, y)
        return torch.stack([self.step(o, y) for o in out_seq]).mean()

    def step(self, o_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} does not decompose over time steps")


@dataclass(frozen=True)
class RateCE(Loss):
    """Cross-entropy on the time-averaged output."""

    per_step = False

    def __call__(self, out_seq, y):
        _check(out_seq, y)
        return F.cross_entropy(out_seq.mean(0), y)


@dataclass(frozen=True)
class TET(Loss):
    """Mean over steps of the per-step cross-entropy."""

    per_step = True

    def step(self, o_t, y):
        return F.cross_entropy(o_t, y)


@dataclass(frozen=True)
class SLTTMix(Loss):
    """SLTT's per-step ``(1−λ)·CE + λ·MSE(o_t, target)``; target all ones (default) or one-hot."""

    lam: float = 0.05
    target: str = "ones"

    per_step = True

    def __post_init__(self):
        if not 0 <= self.lam <= 1:
            raise ValueError(f"lam must be in [0, 1], got {self.lam!r}")
        if self.target not in ("ones", "onehot"):
            raise ValueError(f"target must be 'ones' or 'onehot', got {self.target!r}")

    def step(self, o_t, y):
        ce = F.cross_entropy(o_t, y)
        if self.target == "ones":
            goal = torch.ones_like(o_t)
        else:
            goal = F.one_hot(y, o_t.shape[-1]).to(o_t.dtype)
        return (1 - self.lam) * ce + self.lam * F.mse_loss(o_t, goal)


def get_loss(name: str, lam: float = 0.05, target: str = "ones") -> Loss:
    """Loss by config name: ``rate_ce`` | ``tet`` | ``sltt_mix`` (with ``lam`` and its MSE ``target``)."""
    if name == "rate_ce":
        return RateCE()
    if name == "tet":
        return TET()
    if name == "sltt_mix":
        return SLTTMix(lam, target)
    raise ValueError(f"unknown loss {name!r}; expected one of ['rate_ce', 'tet', 'sltt_mix']")
