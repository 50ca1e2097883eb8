r"""SLTT and SLTT-K: online training whose memory does not grow with the number of time steps.

Spatial Learning Through Time (Meng et al., ICCV 2023, arXiv 2302.14311). The paper's LIF neuron is

.. math::

    u[t] = \lambda\,\mathrm{sg}\big(u[t-1] - V_{th}\,s[t-1]\big) + W s_{in}[t], \qquad
    s[t] = H(u[t] - V_{th}), \qquad \lambda = 1 - 1/\tau

where ``sg`` is stop-gradient: gradients flow only through space (layer to layer within the same step),
never back through time. The loss is a sum of per-step terms, ``L = (1/T)·Σ_t ℓ(o_t, y)``, so the gradient
is a sum of per-step gradients and each step can be forwarded and backwarded at once: the graph of step
``t`` is freed before step ``t + 1`` starts, and training memory is that of one step, whatever ``T`` is.

* :class:`SLTT` — for each ``t``: forward one step ``x_seq[t:t+1]`` with the carried state detached, compute
  ``ℓ(o_t, y)/T``, ``backward()`` (gradients accumulate in ``.grad``). The Trainer then takes one optimizer
  step per batch.
* :class:`SLTTK` — SLTT-K: ``K`` steps drawn per batch (``randperm(T)[:K]``) get a backward pass; the others
  run under ``torch.no_grad`` (the neuron state still advances). The loss stays divided by ``T``.

The model is not modified: the method detaches the whole state dict between steps
(:func:`neurosim.nn.detach_state`), which is exactly the ``sg(·)`` above for every reset mode and reset
timing, works with learnable decay/threshold and with the fused LIF backend, and carries the dropout mask
(one mask for all steps). Time-distributed BatchNorm sees one step at a time, i.e. normalises per step as in
the paper.

The loss must decompose over time steps (``loss.per_step``: ``tet``, ``sltt_mix``); ``rate_ce`` does not.

:data:`PAPER_NEURON` is the paper's neuron (τ = 1.1 → λ = β = 1 − 1/1.1, triangle surrogate α = 1, subtract
reset, V_th = 1); ``neurosim train --config sltt_paper`` runs the paper's setting by name.

Example:
    >>> import torch
    >>> from neurosim.nn import LIF, Flatten, Linear, Sequential
    >>> from neurosim.training import get_loss, get_method
    >>> net = Sequential(Flatten(), Linear(8, 3), LIF(**paper_lif_kwargs()))
    >>> x_seq, y = torch.rand(6, 4, 8), torch.tensor([0, 1, 2, 0])   # [T, B, N], [B]
    >>> out = get_method("sltt").forward_backward(net, x_seq, y, get_loss("sltt_mix"))
    >>> out.out_seq.shape, out.backward_passes
    (torch.Size([6, 4, 3]), 6)
    >>> get_method("sltt_k", k=2).forward_backward(net, x_seq, y, get_loss("tet")).backward_passes
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from neurosim.config import NeuronConfig, RunConfig, load_config
from neurosim.nn.layers import detach_state
from neurosim.training.losses import Loss
from neurosim.training.methods import StepOutput, register_method

__all__ = [
    "PAPER_NEURON", "PAPER_TAU", "SLTT", "SLTTK", "paper_beta", "paper_config", "paper_lif_kwargs",
    "run_online",
]

PAPER_TAU = 1.1  # the official code's default -tau; λ = 1 − 1/τ ≈ 0.0909 (a very fast leak)


def paper_beta(tau: float = PAPER_TAU) -> float:
    """The paper's decay ``λ = 1 − 1/τ`` (dimensionless τ ≥ 1, in time steps; τ = 1 gives λ = 0: no memory).

    Note that this is not ``exp(−dt/τ)``: neurosim's ``tau_mem_ms`` would give a different β for the same τ.
    """
    if not tau >= 1:
        raise ValueError(f"the paper's tau must be >= 1 (λ = 1 − 1/τ must be in [0, 1)), got {tau!r}")
    return 1.0 - 1.0 / tau


# The paper's LIF neuron: λ = 1 − 1/1.1, triangle surrogate α = 1, soft (subtract) reset, V_th = 1,
# reset applied in the step that spiked (SpikingJelly/paper timing), gradient through the reset kept.
PAPER_NEURON = NeuronConfig(
    beta=paper_beta(PAPER_TAU), v_th=1.0, reset="subtract", detach_reset=False, reset_timing="immediate",
    surrogate="triangle", surrogate_alpha=1.0,
)


def paper_lif_kwargs() -> dict[str, Any]:
    """Keyword arguments for :class:`neurosim.nn.LIF` giving the paper's neuron (:data:`PAPER_NEURON`)."""
    return PAPER_NEURON.lif_kwargs()


def paper_config(overrides: list[str] | None = None) -> RunConfig:
    """The shipped ``sltt_paper.toml`` run config (paper neuron, SLTT, ``sltt_mix`` loss, SGD + cosine)."""
    return load_config(Path(__file__).resolve().parents[1] / "configs" / "sltt_paper.toml", overrides)


def _check(x_seq: torch.Tensor, y: torch.Tensor, loss: Loss, method: str) -> int:
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 2:
        shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"{method}: x_seq must be time-first [T, B, ...], got {shape}")
    if not getattr(loss, "per_step", False):
        raise ValueError(
            f"{method} computes the loss one time step at a time, but {type(loss).__name__} does not decompose "
            "over steps; use a per-step loss: loss = 'tet' or 'sltt_mix' (the paper's)"
        )
    return x_seq.shape[0]


def run_online(model: torch.nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss: Loss,
               backward_steps: set[int] | None = None) -> StepOutput:
    """The SLTT loop: forward each step with the carried state detached; backward at once where asked.

    Args:
        model: ``forward(x_seq, state=None) -> (out_seq, state)`` (e.g. :class:`neurosim.nn.Sequential`).
        x_seq: input ``[T, B, ...]``.
        y: targets ``[B]``.
        loss: a per-step loss; step ``t`` contributes ``loss.step(o_t, y) / T``.
        backward_steps: steps that get a backward pass; None means all (SLTT). The others run under
            ``torch.no_grad`` and only advance the state (SLTT-K).

    Returns:
        :class:`StepOutput` with the loss over all ``T`` steps (backwarded or not), the detached outputs
        ``[T, B, C]``, and the number of backward calls made.
    """
    T = x_seq.shape[0]  # time steps
    state = None
    outs, values = [], []
    passes = 0
    for t in range(T):
        with_grad = backward_steps is None or t in backward_steps
        with torch.set_grad_enabled(with_grad and torch.is_grad_enabled()):
            out_t, state = model(x_seq[t:t + 1], state)
            # sg(·) on the whole temporal path; detaching before backward also drops every reference
            # the state holds into this step's graph, so nothing of step t survives its backward.
            state = detach_state(state)
            value = loss.step(out_t.squeeze(0), y) / T
        if with_grad and value.requires_grad:
            value.backward()
            passes += 1
        values.append(value.detach())
        outs.append(out_t.detach())
        del out_t, value
    return StepOutput(float(torch.stack(values).sum()), torch.cat(outs), passes)


@dataclass
class SLTT:
    """Spatial learning through time: per-step forward + backward, temporal path detached.

    Memory is that of one time step (independent of ``T``); gradients accumulate in ``.grad`` over the
    ``T`` backward passes, and the Trainer takes one optimizer step per batch.
    """

    name: str = "sltt"

    def forward_backward(self, model, x_seq, y, loss) -> StepOutput:
        _check(x_seq, y, loss, "SLTT")
        return run_online(model, x_seq, y, loss)


@dataclass
class SLTTK:
    """SLTT-K: backward at ``k`` time steps drawn per batch; the others forward only (state still advances).

    Args:
        k: number of steps per batch that get a backward pass (paper: 4 for DVS-Gesture T = 20, 2 for
            DVS-CIFAR10 T = 10). ``k >= T`` trains every step (= SLTT).
        generator: RNG for drawing the steps; None uses torch's global RNG (saved in checkpoints, so resumed
            runs draw the same steps).

    Attributes:
        last_steps: the steps drawn for the last batch, ascending.
    """

    k: int = 2
    generator: torch.Generator | None = None
    name: str = "sltt_k"
    last_steps: tuple[int, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"sltt_k needs an integer k >= 1 (steps with a backward pass per batch), got {self.k!r}")

    def forward_backward(self, model, x_seq, y, loss) -> StepOutput:
        T = _check(x_seq, y, loss, "SLTT-K")
        steps = torch.randperm(T, generator=self.generator)[: self.k]
        self.last_steps = tuple(sorted(int(t) for t in steps))
        return run_online(model, x_seq, y, loss, set(self.last_steps))


register_method("sltt", lambda **_: SLTT())
register_method("sltt_k", lambda k=2, generator=None, **_: SLTTK(k=k, generator=generator))
