r"""Hebbian subspace neurons: Oja's subspace rule with rows frozen per task.

A layer with ``n`` presynaptic inputs gets ``k`` lateral "subspace" neurons with weights ``H`` (``k × n``). For a
batch of presynaptic vectors ``x`` (rows of ``X``, ``M × n``) one iteration of Oja's subspace rule is

.. math::

    Y = X H^\top, \qquad \hat X = Y H, \qquad
    \Delta H = \mathrm{clamp}\big(Y^\top (X - \hat X) / M,\ \pm c\big), \qquad
    V \leftarrow m V + (1 - m)\,\Delta H, \qquad H \leftarrow H + \eta V

(momentum ``m`` = 0.9, clamp ``c`` = 10, several iterations per batch: HLOP, Xiao et al. ICLR 2024). Its fixed
points are orthonormal bases of the principal subspace of ``E[x xᵀ]``, so after training ``H Hᵀ ≈ I`` and
``Hᵀ H`` is the projector onto the subspace the layer's inputs mostly live in.

Continual learning grows ``H`` one block of rows per task: :meth:`HebbianSubspace.add_rows` appends new rows
(orthonormal, and orthogonal to the existing ones); during the task only those rows learn while the rows of earlier
tasks stay frozen — the reconstruction ``X̂`` uses all rows, so the new rows learn the *residual* subspace that the
old ones do not explain; :meth:`HebbianSubspace.merge` then freezes them too.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> basis = torch.linalg.qr(torch.randn(20, 3, generator=g)).Q.T            # a planted 3-d subspace of R^20
    >>> x = (torch.randn(512, 3, generator=g) * torch.tensor([3.0, 2.0, 1.5])) @ basis
    >>> h = HebbianSubspace(20, lr=0.05)
    >>> h.add_rows(3, generator=g)
    >>> for _ in range(40):
    ...     h.update(x)
    >>> bool(subspace_error(h.weight, basis) < 0.05), bool(orthonormality_error(h.weight) < 0.05)
    (True, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch

from neurosim._stack import caller_stacklevel

__all__ = ["DIVERGED_ROW_NORM", "HebbianSubspace", "orthonormality_error", "project_out", "subspace_error"]

#: a learning row longer than this has diverged: Oja's rule keeps rows near unit length where its rate is stable,
#: while too large a rate makes them oscillate with growing norm (held finite by ``clamp``: 11 on the event digits'
#: first layer at lr 0.03, where the subspace was then no subspace and HLOP's projection wrecked every later task)
DIVERGED_ROW_NORM = 2.0


def _orthonormal_rows(h: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (rows) of the row space of ``h`` (``k × n``), via QR of ``hᵀ``."""
    if h.shape[0] == 0:
        return h
    q, r = torch.linalg.qr(h.T.double())
    keep = r.diagonal().abs() > 1e-8 * max(float(r.diagonal().abs().max()), 1e-30)
    return q[:, keep].T.to(h.dtype)


def subspace_error(h: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Distance between the row space of ``h`` and that of ``basis``: ``‖P_h − P_b‖_F / √(2r)``, in [0, 1].

    ``P`` are orthogonal projectors onto the row spaces (``r`` = the larger rank). 0 means the same subspace,
    1 means orthogonal subspaces of equal dimension. It is the root-mean-square sine of the principal angles.
    """
    qh, qb = _orthonormal_rows(h.detach()), _orthonormal_rows(basis.detach())
    r = max(qh.shape[0], qb.shape[0], 1)
    diff = qh.T @ qh - qb.T @ qb
    return torch.linalg.matrix_norm(diff.double()) / (2 * r) ** 0.5


def orthonormality_error(h: torch.Tensor) -> torch.Tensor:
    """``‖H Hᵀ − I‖_F / √k``: 0 when the ``k`` rows of ``h`` are orthonormal."""
    k = h.shape[0]
    if k == 0:
        return torch.zeros((), dtype=torch.float64)
    eye = torch.eye(k, dtype=torch.float64, device=h.device)
    return torch.linalg.matrix_norm(h.detach().double() @ h.detach().double().T - eye) / k ** 0.5


def project_out(g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``g − g Hᵀ H``: remove from every row of ``g`` (``… × n``) its component in the row space of ``h``.

    With orthonormal rows this is the projection onto the orthogonal complement of that subspace; it is what
    HLOP applies to a weight gradient ``ΔW = δ xᵀ``, since ``δ (x − Hᵀ H x)ᵀ = ΔW (I − Hᵀ H)``.
    """
    if h.shape[0] == 0:
        return g
    return g - (g @ h.T) @ h


class HebbianSubspace:
    """Lateral subspace neurons ``H`` (``k × n``) trained with Oja's subspace rule; earlier rows frozen.

    Args:
        in_features: ``n``, the size of the presynaptic vectors.
        lr: Hebbian learning rate ``η`` (HLOP's PMNIST setting: 0.001 for pixel inputs, 0.01 for spikes).
        iterations: Oja iterations per call of :meth:`update` (5 in the HLOP code).
        momentum: ``m`` of the update's moving average; 0 disables it.
        clamp: every entry of ``ΔH`` is clipped to ``±clamp`` (keeps early, large updates stable).

    Attributes:
        weight: ``H``, ``[k, n]``; rows ``[:num_frozen]`` are frozen, the rest learn.
        num_frozen: how many leading rows are frozen (those of finished tasks).
    """

    def __init__(self, in_features: int, lr: float = 0.01, iterations: int = 5, momentum: float = 0.9,
                 clamp: float = 10.0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 long_rows: str = "raise") -> None:
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features <= 0:
            raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
        if not lr > 0:
            raise ValueError(f"Hebbian lr must be positive, got {lr!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not clamp > 0:
            raise ValueError(f"clamp must be positive, got {clamp!r}")
        if long_rows not in ("raise", "warn"):
            raise ValueError(f"long_rows must be 'raise' or 'warn', got {long_rows!r}")
        # rows past DIVERGED_ROW_NORM: an error, or (for a user of the rows' span only, such as HLOP with an
        # orthonormal basis) a warning, given once; weights that are not finite are an error either way
        self.long_rows, self._warned_long = long_rows, False
        self.in_features, self.lr, self.iterations = in_features, float(lr), iterations
        self.momentum, self.clamp = float(momentum), float(clamp)
        self.weight = torch.zeros(0, in_features, device=device, dtype=dtype)
        self.velocity = torch.zeros_like(self.weight)
        self.num_frozen = 0

    # ------------------------------------------------------------------ structure
    @property
    def num_rows(self) -> int:
        return self.weight.shape[0]

    @property
    def frozen(self) -> torch.Tensor:
        """Rows of finished tasks, ``[num_frozen, n]`` (the old subspace the projection protects)."""
        return self.weight[: self.num_frozen]

    @property
    def learning(self) -> torch.Tensor:
        """Rows learning during the current task, ``[k − num_frozen, n]``."""
        return self.weight[self.num_frozen:]

    def add_rows(self, k: int, generator: torch.Generator | None = None) -> None:
        """Append ``k`` learning rows: orthonormal, and orthogonal to every existing row.

        Raises:
            ValueError: ``k`` negative, or the rows would exceed ``n`` (no room for a new orthogonal direction).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"number of new subspace rows must be an integer >= 0, got {k!r}")
        if k == 0:
            return
        if self.num_rows + k > self.in_features:
            raise ValueError(
                f"cannot add {k} subspace rows: {self.num_rows} exist and the layer has only {self.in_features} "
                f"inputs (at most {self.in_features - self.num_rows} more fit); use smaller subspace sizes"
            )
        g = torch.randn(self.in_features, k, generator=generator, dtype=torch.float64)
        old = _orthonormal_rows(self.weight.double().cpu())
        if old.shape[0]:
            g = g - old.T @ (old @ g)
        q = torch.linalg.qr(g).Q  # [n, k], orthonormal columns ⟂ old rows
        new = q.T.to(self.weight.device, self.weight.dtype)
        self.weight = torch.cat([self.weight, new])
        self.velocity = torch.cat([self.velocity, torch.zeros_like(new)])

    def merge(self) -> None:
        """Freeze every row (end of a task): the learnt rows join the old subspace."""
        self.num_frozen = self.num_rows
        self.velocity.zero_()

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def update(self, x: torch.Tensor, iterations: int | None = None) -> None:
        """Run Oja iterations on presynaptic vectors ``x`` (``[M, n]``); only the learning rows change.

        Shapes:
            x: ``[M, n]`` (any float dtype; cast to ``H``'s).
        """
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Hebbian update needs x of shape [M, {self.in_features}], got {tuple(x.shape)}")
        if self.num_rows == self.num_frozen or x.shape[0] == 0:
            return
        x = x.to(self.weight.device, self.weight.dtype)
        f = self.num_frozen
        old = self.weight[:f]
        x_free = x - (x @ old.T) @ old if f else x  # x minus the frozen rows' reconstruction: fixed during the loop
        for _ in range(self.iterations if iterations is None else iterations):
            new = self.weight[f:]
            y_new = x @ new.T  # [M, k_new]; the frozen rows' outputs do not change
            residual = x_free - y_new @ new  # x − x̂ with x̂ = Hᵀ H x over all rows, [M, n]
            delta = (y_new.T @ residual / x.shape[0]).clamp_(-self.clamp, self.clamp)
            if self.momentum:
                self.velocity[f:].mul_(self.momentum).add_(delta, alpha=1 - self.momentum)
                delta = self.velocity[f:]
            self.weight[f:].add_(delta, alpha=self.lr)
        norm = float(self.weight[f:].norm(dim=1).max()) if self.num_rows > f else 0.0
        finite = bool(torch.isfinite(self.weight).all())
        if finite and norm > DIVERGED_ROW_NORM and self.long_rows == "warn":
            if not self._warned_long:
                self._warned_long = True
                squared = float((x * x).sum(1).mean())
                warnings.warn(f"Hebbian subspace rows reached norm {norm:.3g} (lr {self.lr} is too large for inputs "
                              f"of squared norm ~{squared:.3g}; Oja's rule keeps them at unit length): only their "
                              "span is used, but it follows the inputs' leading directions less well; a rate near "
                              f"{1 / squared if squared > 0 else float('nan'):.2g} keeps them stable",
                              RuntimeWarning, stacklevel=caller_stacklevel())
        elif not (finite and norm <= DIVERGED_ROW_NORM):
            squared = float((x * x).sum(1).mean())
            grown = (f"; its rows, which Oja's rule keeps at unit length, reached norm {norm:.3g}, and projecting "
                     "with them would wreck the later tasks' gradients" if math.isfinite(norm) else "")
            raise FloatingPointError(
                f"Hebbian subspace weights diverged (lr {self.lr} is too large for inputs of squared norm "
                f"~{squared:.3g}{grown}); lower the Hebbian lr (a rate near 1 / that squared norm, "
                f"~{1 / squared if squared > 0 else float('nan'):.2g}, keeps them stable)"
            )

    def to(self, device: torch.device | str) -> "HebbianSubspace":
        self.weight, self.velocity = self.weight.to(device), self.velocity.to(device)
        return self

    def state_dict(self) -> dict:
        return {"weight": self.weight.clone(), "velocity": self.velocity.clone(), "num_frozen": self.num_frozen}

    _STATE_KEYS = ("weight", "velocity", "num_frozen")

    def checked_state(self, state: Mapping, where: str = "HebbianSubspace state dict") -> dict:
        """:meth:`state_dict`'s ``state`` checked against this subspace, its tensors on this subspace's device and
        dtype (what :meth:`load_state_dict` then sets; :class:`~neurosim.continual.HLOP` checks every layer's first).

        Raises:
            ValueError: ``state`` has other keys, a weight of other presynaptic size, a velocity of another shape,
                a ``num_frozen`` outside the rows, or NaN/inf; the message starts with ``where``.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"{where}: expected a HebbianSubspace state dict, got {type(state).__name__}")
        if sorted(state) != sorted(self._STATE_KEYS):
            raise ValueError(f"{where} has keys {list(state)}, expected {list(self._STATE_KEYS)}: load a dict that "
                             "HebbianSubspace.state_dict() made")
        weight, velocity, num_frozen = state["weight"], state["velocity"], state["num_frozen"]
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] != self.in_features:
            shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise ValueError(f"{where}: subspace weight is {shape}, but this layer's presynaptic vectors have "
                             f"{self.in_features} entries (expected [rows, {self.in_features}]): the state dict "
                             "comes from a model of another layout")
        if not isinstance(velocity, torch.Tensor) or velocity.shape != weight.shape:
            shape = tuple(velocity.shape) if isinstance(velocity, torch.Tensor) else type(velocity).__name__
            raise ValueError(f"{where}: velocity is {shape}, expected the weight's {tuple(weight.shape)}")
        if isinstance(num_frozen, bool) or not isinstance(num_frozen, int) or not 0 <= num_frozen <= weight.shape[0]:
            raise ValueError(f"{where}: num_frozen must be an integer in [0, {weight.shape[0]}] (the rows saved), "
                             f"got {num_frozen!r}")
        like = {"device": self.weight.device, "dtype": self.weight.dtype}
        weight, velocity = weight.detach().to(**like), velocity.detach().to(**like)
        if not (torch.isfinite(weight).all() and torch.isfinite(velocity).all()):
            raise ValueError(f"{where}: subspace weight or velocity holds NaN or inf (in this subspace's "
                             f"{self.weight.dtype})")
        return {"weight": weight, "velocity": velocity, "num_frozen": num_frozen}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`'s rows, velocity and frozen count (copies, on this subspace's device and
        dtype). Everything is checked first (:meth:`checked_state`): a state of another layout is a ValueError
        naming what differs, and leaves this subspace as it was."""
        checked = self.checked_state(state)
        self.weight, self.velocity = checked["weight"].clone(), checked["velocity"].clone()
        self.num_frozen = checked["num_frozen"]

    def __repr__(self) -> str:
        return (f"HebbianSubspace(n={self.in_features}, rows={self.num_rows}, frozen={self.num_frozen}, "
                f"lr={self.lr:g}, iterations={self.iterations})")
