r"""Losses on output sequences ``out_seq`` of shape ``[T, B, C]`` (time, batch, classes).

* ``rate_ce``: cross-entropy on the time-averaged output, ``CE(mean_t o_t, y)`` — spikes or membrane.
* ``tet``: mean per-step cross-entropy, ``(1/T)·Σ_t CE(o_t, y)`` (Deng et al., ICLR 2022; the CE part of SLTT's loss).
* ``sltt_mix``: SLTT's loss, ``(1/T)·Σ_t [(1−λ)·CE(o_t, y) + λ·MSE(o_t, target)]`` with λ = 0.05 and an all-ones
  target by default (Meng et al., ICCV 2023; REFERENCES.md), or the one-hot label.
* ``max_ce``: cross-entropy on each output's maximum over time, ``CE(max_t o_t, y)`` — the read-out of the
  Spiking Heidelberg Digits baselines (Cramer et al., IEEE TNNLS 2020) and of Zenke's SpyTorch tutorials
  (``m, _ = torch.max(output, 1)`` before the log-softmax), on a non-spiking membrane read-out
  (``model.readout = "membrane"``). The gradient reaches each class's output at its peak step only.
* ``last_ce``: cross-entropy on the last step's output, ``CE(o_T, y)`` — the many-to-one read-out of sequence
  RNNs (sequential MNIST, delayed recall): the network must still hold the answer when the sequence ends.

Per-step losses (``per_step = True``) can be evaluated one step at a time — ``step(o_t, y) / T`` summed over
``t`` equals the whole-sequence loss — which is what online methods such as SLTT need. ``rate_ce``, ``max_ce``
and ``last_ce`` are not: a maximum over steps is known only once all steps have run, and the last step's loss
alone, under SLTT's cut temporal path, trains the weights on that step's input only (nothing earlier reaches
it), which defeats the last-step read-out; SLTT and SLTT-K refuse them (so does the config, before training).

Each loss predicts with the read-out it trains (:meth:`Loss.predict`): ``argmax_c Σ_t o_t[c]`` for the
time-summed losses (``rate_ce``, ``tet``, ``sltt_mix``), ``argmax_c max_t o_t[c]`` for ``max_ce`` (as SpyTorch
classifies), ``argmax_c o_T[c]`` for ``last_ce``. :func:`predict` with no loss is the time-summed one.
:meth:`Loss.running_scores` gives the class scores that read-out holds after each step (``Σ_{τ≤t} o_τ``,
``max_{τ≤t} o_τ`` or ``o_t``), what a run stopped after step ``t`` would predict from (early exit:
:mod:`neurosim.estimation.early_exit`); its last step predicts as :meth:`Loss.predict`.

Example:
    >>> import torch
    >>> out = torch.zeros(4, 2, 3); out[:, 0, 1] = 1; out[:, 1, 2] = 1
    >>> y = torch.tensor([1, 2])
    >>> predict(out).tolist()
    [1, 2]
    >>> loss = get_loss("tet")
    >>> torch.allclose(loss(out, y), sum(loss.step(o, y) for o in out) / 4)
    True
    >>> late = torch.zeros(4, 1, 3); late[0, 0, 0] = 5; late[-1, 0, 2] = 1   # class 0 early, class 2 at the end
    >>> [predict(late, name).item() for name in ("rate_ce", "max_ce", "last_ce")]
    [0, 0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LOSS_NAMES", "LastCE", "Loss", "MaxCE", "RateCE", "SLTTMix", "TET", "get_loss", "predict",
           "running_scores"]

#: the names :func:`get_loss` knows (``train.loss`` in a config)
LOSS_NAMES = ("rate_ce", "tet", "sltt_mix", "max_ce", "last_ce")


def _check(out_seq: torch.Tensor, y: torch.Tensor) -> None:
    if out_seq.dim() != 3:
        raise ValueError(f"losses expect out_seq [T, B, C], got shape {tuple(out_seq.shape)}")
    if y.shape != out_seq.shape[1:2]:
        raise ValueError(f"targets must have shape [B] = ({out_seq.shape[1]},), got {tuple(y.shape)}")


def _check_outputs(out_seq: torch.Tensor) -> None:
    if not isinstance(out_seq, torch.Tensor) or out_seq.dim() != 3 or out_seq.shape[0] == 0:
        got = f"shape {tuple(out_seq.shape)}" if isinstance(out_seq, torch.Tensor) else type(out_seq).__name__
        raise ValueError(f"predictions need outputs out_seq [T, B, C] with T >= 1, got {got}")


def predict(out_seq: torch.Tensor, loss: Loss | str | None = None) -> torch.Tensor:
    """Class prediction ``[B]`` by the read-out ``loss`` trains (:meth:`Loss.predict`; a loss object or its name).

    None (or a loss without its own ``predict``): ``argmax_c Σ_t o_t[c]``, the time-summed read-out.
    """
    return _read_out(out_seq, loss, "predict", lambda o: o.sum(0).argmax(-1))


def running_scores(out_seq: torch.Tensor, loss: Loss | str | None = None) -> torch.Tensor:
    """Class scores ``[T, B, C]`` of the read-out ``loss`` trains after each step (:meth:`Loss.running_scores`; a
    loss object or its name; None: the time-summed read-out, ``Σ_{τ≤t} o_τ``)."""
    return _read_out(out_seq, loss, "running_scores", lambda o: o.cumsum(0))


def _read_out(out_seq: torch.Tensor, loss, method: str, time_summed):
    """``loss.<method>(out_seq)`` (``loss`` an object or its name), or ``time_summed(out_seq)`` for a loss without it."""
    if isinstance(loss, str):
        loss = get_loss(loss)
    reader = getattr(loss, method, None)
    if reader is not None:
        return reader(out_seq)
    _check_outputs(out_seq)
    return time_summed(out_seq)


class Loss:
    """Base class: ``loss(out_seq, y) -> scalar``; per-step losses also offer ``step(o_t, y)``.

    :meth:`predict` turns outputs into classes with the read-out the loss trains; the default, the class of the
    largest time-summed output, suits the losses that sum or average over steps.
    """

    per_step = False

    def __call__(self, out_seq: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check(out_seq, y)
        return torch.stack([self.step(o, y) for o in out_seq]).mean()

    def step(self, o_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} does not decompose over time steps")

    def predict(self, out_seq: torch.Tensor) -> torch.Tensor:
        """Class prediction ``argmax_c Σ_t o_t[c]``; shape ``[B]``."""
        _check_outputs(out_seq)
        return out_seq.sum(0).argmax(-1)

    def running_scores(self, out_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, C]``: the scores :meth:`predict` would take the argmax of had the run stopped after each step,
        here the running sum ``Σ_{τ≤t} o_τ``."""
        _check_outputs(out_seq)
        return out_seq.cumsum(0)


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


@dataclass(frozen=True)
class MaxCE(Loss):
    """Cross-entropy on each output's maximum over time, ``CE(max_t o_t, y)``; predicts ``argmax_c max_t o_t[c]``.

    The SHD read-out of Cramer et al. (IEEE TNNLS 2020) and Zenke's SpyTorch tutorials: a non-spiking read-out
    membrane (``model.readout = "membrane"``) whose peak over the sample is the class score, so a class may
    answer at whichever step its evidence peaks. ``torch.max`` sends the gradient to the peak step of each
    output (the first one on ties). On a spiking read-out the maximum of 0/1 spikes says only whether a class
    spiked at all. Not per-step: the maximum needs every step first.
    """

    per_step = False

    def __call__(self, out_seq, y):
        _check(out_seq, y)
        _check_outputs(out_seq)
        return F.cross_entropy(out_seq.max(0).values, y)

    def predict(self, out_seq):
        _check_outputs(out_seq)
        return out_seq.max(0).values.argmax(-1)

    def running_scores(self, out_seq):
        """The running maximum ``max_{τ≤t} o_τ``."""
        _check_outputs(out_seq)
        return out_seq.cummax(0).values


@dataclass(frozen=True)
class LastCE(Loss):
    """Cross-entropy on the last step's output, ``CE(o_T, y)``; predicts ``argmax_c o_T[c]``.

    The many-to-one read-out of sequence classification with recurrent networks: the class is read once the
    sequence has ended, so whatever decides it must still be held then (in a membrane that has not leaked it
    away, or in recurrent activity). Not per-step: under SLTT's cut temporal path the last step's loss would
    train the weights on the last step's input alone.
    """

    per_step = False

    def __call__(self, out_seq, y):
        _check(out_seq, y)
        _check_outputs(out_seq)
        return F.cross_entropy(out_seq[-1], y)

    def predict(self, out_seq):
        _check_outputs(out_seq)
        return out_seq[-1].argmax(-1)

    def running_scores(self, out_seq):
        """Each step's own output ``o_t`` (a run stopped after step ``t`` reads its last step, ``t``)."""
        _check_outputs(out_seq)
        return out_seq


def get_loss(name: str, lam: float = 0.05, target: str = "ones") -> Loss:
    """Loss by config name: ``rate_ce`` | ``tet`` | ``sltt_mix`` (with ``lam`` and its MSE ``target``) |
    ``max_ce`` | ``last_ce``."""
    if name == "rate_ce":
        return RateCE()
    if name == "tet":
        return TET()
    if name == "sltt_mix":
        return SLTTMix(lam, target)
    if name == "max_ce":
        return MaxCE()
    if name == "last_ce":
        return LastCE()
    raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSS_NAMES)}")
