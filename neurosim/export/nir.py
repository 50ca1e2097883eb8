r"""neurosim models ⇄ NIR graphs (Neuromorphic Intermediate Representation, ``nir`` 1.0).

:func:`to_nir` describes a neurosim model (or an snnTorch model neurosim accepts) as a ``nir.NIRGraph`` that
hardware tools and other SNN libraries read; :func:`from_nir` turns a linear-chain NIR graph (recurrent layers
included) back into a runnable neurosim :class:`~neurosim.nn.Sequential`; :func:`write_nir` / :func:`read_nir`
store graphs in NIR's HDF5 file format (the write is atomic).

**Time constants — the one place where ``dt`` and ``τ`` meet.** neurosim's neurons are discrete,
``v[t] = β·v[t−1] + x[t]``. NIR's are continuous, ``τ·dv/dt = (v_leak − v) + R·I``, which a simulator
with step ``dt`` integrates by forward Euler (as snnTorch's and Norse's NIR importers do):

.. math::

    v[t] = \Big(1 - \frac{dt}{τ}\Big)\,v[t-1] + \frac{dt}{τ}\,\big(v_{leak} + R\,I[t]\big).

Export picks ``τ = dt/(1 − β)`` and ``R = τ/dt`` (with ``v_leak = 0``) so that this Euler step is exactly
``β·v + I``; import inverts it, ``β = 1 − dt/τ``, and the input gain ``dt·R/τ`` (1 for neurosim's own
graphs) is folded into the preceding synapse. :func:`tau_r_from_beta` and :func:`beta_gain_from_tau_r` are
the only code that converts between them. Note that this NIR ``τ`` is *not* neurosim's ``tau_mem_ms``
(``β = exp(−dt/τ_mem)``, an exact-exponential discretisation): ``τ_NIR ≈ τ_mem + dt/2``. Neurons with
``β = 1`` (no leak) become ``IF`` (spiking) or ``I`` (readout) nodes with ``R = 1/dt`` (``v += dt·R·I``).

So a graph's ``τ`` means a decay only together with the ``dt`` it was made for: export with the ``dt_s`` the
reading tool will use, and import with the one the graph was written with (neurosim's own graphs carry their
``dt`` and ignore ``dt_s``). With another ``dt_s`` the import is refused when ``τ < dt``, and otherwise gives
other decays without a word (β = 0.9 at 1e-4 s is 0.99 at 1e-5 s); without ``dt_s`` :func:`from_nir` reads another
tool's neurons at 1e-3 s and warns, naming them (snnTorch's β = 0.9, written for 1e-4 s, would be 0 there).

**Interchange with snnTorch** (``snntorch.export_nir.export_to_nir`` / ``snntorch.import_nir.import_from_nir``:
not at snnTorch 1.0's top level, and they need ``nirtorch``;
checked with snnTorch 1.0, nirtorch 2.6 and nir 1.0.8 by ``tests/export/test_nir_snntorch.py``; snnTorch 0.9's
importer flattens differently and fails on these graphs, so those tests skip before snnTorch 1.0). snnTorch assumes
``dt = 1e-4`` s: pass ``dt_s=1e-4`` to :func:`to_nir` for graphs snnTorch will read (β = 0.9 exported at 1e-3 s
runs there as 0.99) and to :func:`from_nir` for graphs snnTorch wrote. snnTorch imports every ``LIF`` node as
``Leaky(reset_mechanism="zero", reset_delay=False)`` and exports every ``Leaky`` as such a node, whatever its
reset: that neuron is neurosim's ``LIF(reset="zero")`` (immediate timing) with a strict threshold.

=====================================  ==================================================================
neurosim → NIR → snnTorch              what ``import_from_nir`` runs
=====================================  ==================================================================
``Linear``, ``Conv2d``, ``AvgPool2d``  the same torch layers: exact
``Flatten``                            ``nn.Flatten(0, -1)``: the imported ``torch.fx`` module takes one
                                       sample per call, ``out, state = module(x_seq[t, b], state)``
                                       (a batch is flattened too), its membranes held in the ``Leaky``
                                       modules (zero their ``mem`` before a new sample)
``SumPool2d`` (no padding)             ``nn.LPPool2d(1)``: the same sums on spikes; its padding is dropped
``LIF(reset="zero")``                  the same spikes, except where ``v == v_th`` exactly: neurosim spikes
                                       (``v ≥ v_th``), snnTorch does not (``v > v_th``)
``LIF``, other reset or timing         a zero-reset ``Leaky``: other spikes (the reset is in neurosim's
                                       metadata only, see Reset below)
``LIF`` with β = 1 (``IF``)            refused by snnTorch: ``AssertionError: r != 1 not supported``
``LI`` readout (``LI``/``I``)          refused by snnTorch: ``ValueError: Unknown node type``
``MaxPool2d`` (``maxpool="sumpool"``)  a sum pool (see MaxPool2d below)
``RLIF`` (zero reset, no bias)         a ``Leaky`` and a ``Linear`` in a loop that nirtorch runs (not an
                                       ``RLeaky`` module): the same spikes, dense or diagonal
``RLIF`` with a recurrent bias         the bias enters from the second step on: nirtorch starts the loop's
                                       feedback at 0, where an RLIF (and ``RLeaky``) adds ``W·0 + b``
``CubaLIF(reset="zero")``              ``Synaptic(reset_mechanism="zero", reset_delay=False)``: the same
                                       spikes (tie at ``v == v_th`` as for ``LIF``); other resets and timings
                                       run as that zero reset, as for ``LIF``
=====================================  ==================================================================

=====================================  ==================================================================
snnTorch → NIR → neurosim              what :func:`from_nir` (``dt_s=1e-4``) builds
=====================================  ==================================================================
``nn.Linear``, ``nn.Conv2d``           the same layers: exact
``nn.AvgPool2d``, ``nn.Flatten()``     the same layers: exact
zero-reset ``Leaky``                   ``LIF(reset="zero")`` with a strict threshold: the same spikes
                                       (``reset_mechanism="zero", reset_delay=False``)
other ``Leaky`` resets                 the same zero-reset ``LIF`` (snnTorch writes no reset): the spikes
                                       of that neuron, not of the original
scalar ``beta`` or ``threshold``       ``export_to_nir`` fails (nir's type inference: ``type mismatch``;
                                       snnTorch's bug, its issue #410): give ``torch.full(shape, value)``
                                       tensors of the layer's shape
``nn.MaxPool2d``                       ``export_to_nir`` fails (``AttributeError``): no NIR node
zero-reset ``RLeaky`` (written flat:   ``RLIF`` named ``1`` (dense; diagonal for ``all_to_all=False``):
``1.lif`` ⇄ ``1.w_rec``)               the same spikes
zero-reset ``Synaptic``                ``CubaLIF`` with the same α and β, zero reset (``reset_delay=False``):
(``CubaLIF`` node)                     the same spikes; per-neuron ``alpha``/``beta``/``threshold`` tensors,
                                       as for ``Leaky``
``RSynaptic``                          ``export_to_nir`` fails (nirtorch: ``Cannot find the input of an
                                       empty graph``); a ``CubaLIF`` ⇄ ``Linear`` loop is refused by
                                       :func:`from_nir` (neurosim has no recurrent CUBA layer)
=====================================  ==================================================================

Call ``export_to_nir(model, sample[1, ...], ignore_dims=[0])`` so that the graph's shapes have no batch dim.
:func:`to_nir` also reads snnTorch models itself (through :func:`neurosim.interop.from_snntorch`: one β and
threshold per layer, its resets and timings, ``MaxPool2d`` with ``maxpool="sumpool"``) and :func:`from_nir`
restores their exact dynamics from its metadata; snnTorch's importer still sees zero-reset neurons.

Exported node types (node names are the module names of ``model.named_modules()``, so activity recorded per
module maps onto the graph by name; the graph's entry and exit are ``input`` and ``output``):

=============================  =======================================================================
neurosim layer                 NIR node
=============================  =======================================================================
``Linear`` (bias / no bias)    ``Affine`` / ``Linear`` (input must be 1-d: put a ``Flatten`` before it)
``Conv2d``                     ``Conv2d`` with ``input_shape``, stride, padding, dilation, groups, bias
``BatchNorm1d/2d``             folded into the preceding ``Linear``/``Conv2d`` (running statistics)
``SumPool2d``, ``AvgPool2d``   ``SumPool2d``, ``AvgPool2d``
``MaxPool2d``                  error, or ``SumPool2d`` with ``maxpool="sumpool"`` (see below)
``Flatten``                    ``Flatten(start_dim=0, end_dim=-1)`` (NIR shapes have no time/batch dims)
``Dropout``, ``nn.Identity``   nothing (identity at inference)
``LIF``                        ``LIF`` (``IF`` when β = 1)
``RLIF``                       a subgraph ``input → lif ⇄ recurrent, lif → output`` (see Recurrence below)
``CubaLIF``                    ``CubaLIF`` (see Current-based neurons below)
``LI`` readout                 ``LI`` (``I`` when β = 1)
=============================  =======================================================================

The graph describes the model **at inference** (eval mode): BatchNorm uses its running statistics and
dropout is the identity, whatever mode the model is in.

What NIR cannot say, and how it is kept:

* **Reset.** NIR's LIF resets to ``v_reset`` when it spikes; neurosim also resets by subtraction or not at
  all, at two timings (``immediate``; ``delayed`` = snnTorch). Every exported node is written with
  ``v_reset = 0`` and carries the exact neurosim settings in ``node.metadata["neurosim"]`` (β as stored,
  reset, reset timing, surrogate, learnable flags, ``dt``). :func:`from_nir` restores them from there, so a
  round trip gives identical spikes; other tools see a reset-to-zero neuron. A node without this metadata
  is imported as NIR defines it: reset to zero, immediate timing, and a spike when ``v > v_th`` (its
  threshold is the next number above ``v_th`` in the model's dtype, since neurosim's immediate timing spikes at
  ``v ≥ v_th``).
  Exported graphs keep neurosim's threshold as it is, so a tool that spikes at ``v > v_th`` differs from
  neurosim at the tie ``v == v_th``.
* **MaxPool2d** has no NIR node. On binary spikes, max pooling equals ``min(1, sum pooling)``, so with
  ``maxpool="sumpool"`` it is exported as ``SumPool2d`` (tagged ``"MaxPool2d"`` in its metadata; neurosim
  imports it back as ``MaxPool2d``). To other tools it *is* a sum pool: the same connectivity, but a neuron
  behind it can receive up to ``k²`` events per window and step instead of 1, so the dynamics and the
  synaptic-operation counts of the graph alone are those of sum pooling. neurosim's estimates
  (:func:`neurosim.estimation.estimate_model`) record the events each max pool passes on and give them to the
  hardware models with the graph, so they count max pooling's operations. Over non-binary inputs (e.g. event
  counts) the two differ more.
* **Recurrence.** An ``RLIF`` layer named ``k`` is the nested graph ``k`` with nodes ``lif`` (its ``.lif``,
  written as a LIF layer is: β/τ, threshold, reset kind and timing) and ``recurrent`` (an ``N × N``
  ``Linear``, or ``Affine`` with the recurrent bias), edges ``input → lif → recurrent → lif → output``: the
  layout snnTorch's ``RLeaky`` export has, and the one nirtorch runs (the feedback of step ``t − 1`` enters step
  ``t``). Diagonal connectivity is that matrix with the weights on its diagonal (a ``Scale`` node says the same,
  but snnTorch's importer and :mod:`hardware_models` read only Linear/Affine feedback; the matrix has exactly one
  nonzero synapse per neuron, which the estimates count); the subgraph's metadata names the connectivity.
  Inlined (:func:`hardware_models.graph.flatten_graph`), the neuron is node ``k.lif``, the name of the RLIF's LIF
  module, so activity recorded per module maps onto it. :func:`from_nir` reads this subgraph, or the same loop
  written flat (``LIF/IF → Linear/Affine → that LIF/IF``, the Linear feeding and fed by the neuron alone:
  snnTorch's files), as an RLIF; without neurosim metadata a diagonal matrix gives diagonal connectivity and the
  neuron's input gain ``dt·R/τ`` is folded into the feedback weights too. Errors about a flat loop name the file's
  nodes; a neuron with several feedback synapses, or two nodes feeding each other in another form (a ``CubaLIF``,
  a ``Scale``), is refused saying what the loop must be. An RLIF whose ``.recurrent`` a chip's non-idealities
  replaced (:func:`neurosim.hardware.nonideal.apply_nonidealities`) is refused on export, as a feed-forward
  ``CrossbarLinear`` is: its read noise and ADC have no NIR equivalent.
* **Current-based neurons.** A :class:`~neurosim.nn.CubaLIF` (``i[t] = α·i[t−1] + x[t]``, ``v[t] = β·v[t−1] +
  i[t]``) is NIR's ``CubaLIF`` (``τ_syn·dI/dt = −I + w_in·x``, ``τ_mem·dv/dt = (v_leak − v) + R·I``). Forward Euler
  (the membrane taking the step's new current, as snnTorch's ``Synaptic`` and importer do) gives ``α = 1 − dt/τ_syn``
  with input gain ``dt·w_in/τ_syn``, and ``β``, gain ``dt·R/τ_mem`` as for ``LIF``: export writes ``τ_syn = dt/(1 − α)``,
  ``w_in = τ_syn/dt`` (both gains 1; what snnTorch writes for a ``Synaptic`` and requires on import) and the
  ``.lif``'s metadata with α; import folds the product of the two gains into the synapse before the neuron. α = 1 or
  β = 1 is refused on export (``τ = ∞`` would need an infinite ``w_in`` or ``R``; NIR has no CUBA ``IF``), and
  ``v_leak ≠ 0`` on import (a constant membrane input, which a bias before the neuron cannot give: it reaches the
  membrane through the decaying current). The non-spiking ``CubaLI`` is not importable.
* Per-neuron ``τ``/``R``/threshold (one value for all neurons is fine, stored as a single number or once per
  neuron in any shape, e.g. flat ``(32,)`` for a conv's ``(2, 4, 4)`` neurons), ``v_leak ≠ 0`` without a synapse before the neuron, ``v_reset ≠ 0``,
  branching graphs, cycles other than a recurrent layer's, nested graphs other than a recurrent layer, and other
  node types (``CubaLI``, ``Scale``, ``Threshold``, ``Delay``, ``Conv1d``) are not importable:
  :class:`NIRImportError` names the node.

Example:
    >>> import torch
    >>> from neurosim.nn import LIF, Flatten, Linear, Sequential
    >>> net = Sequential(Flatten(), Linear(8, 4), LIF(beta=0.75))
    >>> graph = to_nir(net, input_shape=(2, 4), dt_s=1e-3)
    >>> list(graph.nodes)
    ['input', '0', '1', '2', 'output']
    >>> float(graph.nodes["2"].tau[0]), float(graph.nodes["2"].r[0])  # τ = dt/(1 − β), R = τ/dt
    (0.004, 4.0)
    >>> x = (torch.rand(5, 3, 2, 4) < 0.5).float()
    >>> torch.equal(from_nir(graph)(x)[0], net(x)[0])
    True
"""

from __future__ import annotations

import io
import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from neurosim import nn as nsn
from neurosim._io import atomic_write_bytes
from neurosim.functional.lif import strict_threshold
from neurosim.nn.recurrent import CONNECTIVITIES, DiagonalRecurrent

__all__ = [
    "MAXPOOL_MODES", "NIRExportError", "NIRImportError", "beta_gain_from_tau_r", "from_nir", "read_nir",
    "tau_r_from_beta", "to_nir", "write_nir",
]

MAXPOOL_MODES = ("error", "sumpool")
META_KEY = "neurosim"  # node.metadata[META_KEY]: what NIR cannot express, for an exact round trip
FORMAT_VERSION = 1  # of the neurosim metadata written into graphs

_EXPORTABLE = ("Linear, Conv2d, BatchNorm1d/2d (folded into the preceding Linear/Conv2d), SumPool2d, AvgPool2d, "
               "MaxPool2d (with maxpool='sumpool'), Flatten, Dropout, LIF, RLIF, CubaLIF, LI, nn.Identity")
_IMPORTABLE = ("Input, Output, Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, LIF, IF, CubaLIF, LI, I, and "
               "recurrent layers (a subgraph or loop LIF/IF ⇄ Linear/Affine)")


class NIRExportError(ValueError):
    """The model has a layer or an option that has no NIR equivalent; the message names the layer."""


class NIRImportError(ValueError):
    """The NIR graph has a node, option or structure neurosim cannot run; the message names the node."""


# ------------------------------------------------------------------------------------ dt and τ, in one place
def _check_dt(dt_s: float) -> float:
    if isinstance(dt_s, bool) or not isinstance(dt_s, (int, float)) or not (dt_s > 0 and math.isfinite(dt_s)):
        raise ValueError(f"dt_s must be a positive finite number of seconds per time step, got {dt_s!r}")
    return float(dt_s)


def tau_r_from_beta(beta: float, dt_s: float) -> tuple[float, float]:
    """NIR time constant and resistance that make NIR's forward-Euler step equal neurosim's ``β·v + I``.

    ``τ = dt/(1 − β)`` and ``R = τ/dt``, so ``1 − dt/τ = β`` and ``dt·R/τ = 1`` (see the module docstring).
    For ``β = 1`` (no leak: NIR ``IF``/``I`` nodes, ``dv/dt = R·I``) it returns ``(inf, 1/dt)``.

    Args:
        beta: decay per step, in [0, 1] (0: ``τ = dt``).
        dt_s: seconds per time step.

    Returns:
        ``(tau_s, r)``: time constant in seconds, resistance (input gain per unit of ``τ/dt``).

    Example:
        >>> tau_s, r = tau_r_from_beta(0.9, 1e-3)
        >>> round(tau_s, 9), round(r, 9)
        (0.01, 10.0)
    """
    dt_s = _check_dt(dt_s)
    beta = float(beta)
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    if beta == 1:
        return math.inf, 1.0 / dt_s
    tau_s = dt_s / (1.0 - beta)
    return tau_s, tau_s / dt_s


def beta_gain_from_tau_r(tau_s: float, r: float, dt_s: float) -> tuple[float, float]:
    """Inverse of :func:`tau_r_from_beta`: the discrete decay and input gain of NIR's forward-Euler step.

    ``β = 1 − dt/τ`` and ``gain = dt·R/τ``, so that ``v[t] = β·v[t−1] + gain·I[t]``; ``τ = inf`` (``IF``/``I``
    nodes) gives ``(1, dt·R)``.

    Args:
        tau_s: time constant in seconds (``inf`` for no leak); must exceed ``dt_s``.
        r: resistance.
        dt_s: seconds per time step.

    Returns:
        ``(beta, gain)``.

    Raises:
        ValueError: ``τ ≤ dt`` (β ≤ 0: forward Euler would overshoot; use a smaller ``dt_s``) or a non-finite ``R``.

    Example:
        >>> beta, gain = beta_gain_from_tau_r(0.01, 10.0, 1e-3)
        >>> round(beta, 12), round(gain, 12)
        (0.9, 1.0)
    """
    dt_s = _check_dt(dt_s)
    tau_s, r = float(tau_s), float(r)
    if not math.isfinite(r):
        raise ValueError(f"r must be finite, got {r!r}")
    if tau_s == math.inf:
        return 1.0, dt_s * r
    if not (tau_s >= dt_s * (1 - 1e-6) and math.isfinite(tau_s)):  # τ = dt stored in float32 is a little short
        raise ValueError(
            f"tau_s = {tau_s!r} s is shorter than dt_s = {dt_s!r} s, so β = 1 − dt/τ = {1 - dt_s / tau_s:.4g} "
            "is not in [0, 1]; pass the dt_s the graph was exported with, or a smaller one"
        )
    if tau_s <= dt_s:  # τ = dt: β = 0, no memory between steps
        return 0.0, dt_s * r / tau_s
    return 1.0 - dt_s / tau_s, dt_s * r / tau_s


# ------------------------------------------------------------------------------------------------ export
def _as_layers(model) -> list[tuple[str, nn.Module]]:
    """(module name, layer) in execution order; nested ``nn.Sequential`` flattened with dotted names."""
    out: list[tuple[str, nn.Module]] = []

    def walk(seq: nn.Sequential, prefix: str) -> None:
        for name, m in seq.named_children():
            full = f"{prefix}{name}"
            if isinstance(m, nn.Sequential):
                walk(m, full + ".")
            else:
                out.append((full, m))

    walk(model, "")
    return out


def _is_snntorch(model: nn.Module) -> bool:
    return any(type(m).__module__.split(".")[0] == "snntorch" for m in model.modules())


def _to_neurosim(model) -> nn.Sequential:
    if isinstance(model, nn.Module) and not isinstance(model, nsn.Sequential) and _is_snntorch(model):
        from neurosim.interop.snntorch import from_snntorch

        return from_snntorch(model)
    if isinstance(model, nn.Sequential):
        return model
    raise TypeError(
        f"to_nir needs a neurosim Sequential (e.g. from neurosim.nn.build_model) or an snnTorch nn.Sequential, "
        f"got {type(model).__name__}"
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _pair(v, what: str, where: str) -> tuple[int, int]:
    t = tuple(int(x) for x in (v if isinstance(v, (tuple, list, np.ndarray)) else (v, v)))
    if len(t) != 2:
        raise NIRExportError(f"{where}: {what} must be an int or a pair, got {v!r}")
    return t


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm,
             where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold eval-mode BatchNorm ``γ·(y − μ)/√(σ² + ε) + β`` into the synapse before it (in float64)."""
    if bn.running_mean is None or bn.running_var is None:
        raise NIRExportError(f"{where}: BatchNorm without running statistics (track_running_stats=False) cannot be "
                             "folded; its eval-mode output depends on the batch")
    if bn.num_features != weight.shape[0]:
        raise NIRExportError(f"{where}: BatchNorm has {bn.num_features} features but the layer before it has "
                             f"{weight.shape[0]} outputs")
    f64 = torch.float64
    scale = 1.0 / torch.sqrt(bn.running_var.detach().to(f64) + bn.eps)
    shift = -bn.running_mean.detach().to(f64) * scale
    if bn.affine:
        scale = scale * bn.weight.detach().to(f64)
        shift = shift * bn.weight.detach().to(f64) + bn.bias.detach().to(f64)
    w = weight.detach().to(f64) * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    b = shift if bias is None else bias.detach().to(f64) * scale + shift
    return w.to(weight.dtype), b.to(weight.dtype)


def _typed(node, in_shape, out_shape):
    node.input_type = {"input": np.asarray(in_shape, dtype=np.int64)}
    node.output_type = {"output": np.asarray(out_shape, dtype=np.int64)}
    return node


def _run_shape(layer: nn.Module, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """Output shape of a stateless layer for one sample of ``shape`` (time and batch of size 1)."""
    p = next(layer.parameters(), None)
    x = torch.zeros(1, 1, *shape, dtype=p.dtype if p is not None else torch.float32,
                    device=p.device if p is not None else "cpu")
    try:
        with torch.no_grad():
            y = layer(x)
    except Exception as e:  # noqa: BLE001 - any torch shape error: report the layer and the shape
        raise NIRExportError(f"{where}: does not accept per-sample input of shape {shape} "
                             f"({type(e).__name__}: {e}); check input_shape") from None
    return tuple(int(d) for d in y.shape[2:])


def _lif_meta(lif: nsn.LIF, beta: float, dt_s: float) -> dict[str, Any]:
    meta = {
        "layer": "LIF", "beta": beta, "reset": lif.reset, "reset_timing": lif.reset_timing,
        "detach_reset": bool(lif.detach_reset), "surrogate": lif.surrogate.name,
        "surrogate_alpha": float(lif.surrogate.alpha), "learn_beta": bool(lif.learn_beta),
        "learn_threshold": bool(lif.learn_threshold), "dt_ms": float(lif.dt_ms), "backend": lif.backend,
        "export_dt_s": dt_s,
    }
    if lif.learn_beta:
        meta["beta_logit"] = float(lif.beta_logit.detach())
    return meta


def _neuron_node(m: nn.Module, shape: tuple[int, ...], dt_s: float, where: str):
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731 - NIR wants one value per neuron
    if isinstance(m, nsn.LIF):
        beta, v_th = float(m.beta.detach()), float(m.v_th.detach())
        meta = {META_KEY: _lif_meta(m, beta, dt_s)}
        tau_s, r = tau_r_from_beta(beta, dt_s)
        if beta == 1:
            return nir.IF(r=full(r), v_threshold=full(v_th), v_reset=full(0.0), metadata=meta)
        return nir.LIF(tau=full(tau_s), r=full(r), v_leak=full(0.0), v_threshold=full(v_th), v_reset=full(0.0),
                       metadata=meta)
    beta = float(m.beta)  # LI readout
    meta = {META_KEY: {"layer": "LI", "beta": beta, "export_dt_s": dt_s}}
    tau_s, r = tau_r_from_beta(beta, dt_s)
    if beta == 1:
        return nir.I(r=full(r), metadata=meta)
    return nir.LI(tau=full(tau_s), r=full(r), v_leak=full(0.0), metadata=meta)


def _cuba_node(m: nsn.CubaLIF, shape: tuple[int, ...], dt_s: float, where: str) -> nir.CubaLIF:
    """A CubaLIF layer as NIR's ``CubaLIF`` node, whose forward-Euler step is exactly neurosim's.

    NIR's ``τ_syn·dI/dt = −I + w_in·x`` steps by Euler to ``I[t] = (1 − dt/τ_syn)·I[t−1] + (dt·w_in/τ_syn)·x[t]``:
    ``τ_syn = dt/(1 − α)`` and ``w_in = τ_syn/dt`` make it ``α·I + x``, the conversion a LIF's ``τ``/``R`` get
    (:func:`tau_r_from_beta`, with ``w_in`` in ``R``'s place); the membrane's ``τ_mem``/``R`` are the ``.lif``
    child's, as for a LIF layer. snnTorch's ``export_to_nir`` writes its ``Synaptic`` so, and its importer
    requires exactly these (``r = τ_mem/dt``, ``w_in·dt/τ_syn = 1``). The metadata is the LIF's (reset kind and
    timing, learnable flags) with ``layer = "CubaLIF"`` and α as stored.

    α = 1 or β = 1 (a current or membrane that never decays) would need an infinite ``w_in`` or ``R`` (NIR has an
    ``IF`` node for a LIF without leak, but no CUBA one): refused, naming the layer.
    """
    alpha, beta, v_th = float(m.alpha.detach()), float(m.lif.beta.detach()), float(m.lif.v_th.detach())
    for what, value, tau in (("alpha (the synaptic current's decay)", alpha, "tau_syn"),
                             ("beta (the membrane's decay)", beta, "tau_mem")):
        if value == 1:
            raise NIRExportError(
                f"{where}: {what} is 1 (no decay); NIR's CubaLIF node always decays ({tau}·dI/dt = −I + ...), and "
                f"{tau} = ∞ would need an infinite input weight to keep its unit gain; use a value below 1")
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731 - NIR wants one value per neuron
    tau_syn, w_in = tau_r_from_beta(alpha, dt_s)
    tau_mem, r = tau_r_from_beta(beta, dt_s)
    meta = {**_lif_meta(m.lif, beta, dt_s), "layer": "CubaLIF", "alpha": alpha}
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(r), v_leak=full(0.0),
                       v_threshold=full(v_th), v_reset=full(0.0), w_in=full(w_in), metadata={META_KEY: meta})


def _recurrent_node(m: nsn.RLIF, shape: tuple[int, ...], dt_s: float, where: str,
                     neuron: str = "lif") -> nir.NIRGraph:
    """An RLIF layer as the subgraph ``input → lif ⇄ recurrent, lif → output`` (snnTorch's ``RLeaky`` layout;
    the neuron named ``neuron``, ``lif`` unless an imported graph named it otherwise).

    The neuron is :func:`_neuron_node` of the layer's ``.lif`` (β/τ, threshold, reset kind and timing in its
    metadata, as for a LIF layer); ``recurrent`` is an ``N × N`` ``Linear`` (``Affine`` with the recurrent bias).
    Diagonal connectivity is written as that matrix with the weights on its diagonal: NIR's ``Scale`` would say
    the same, but snnTorch's importer and the hardware models read only Linear/Affine as the recurrent synapse,
    and a diagonal matrix has exactly one nonzero synapse per neuron, which is what the estimates count. The
    subgraph's metadata names the connectivity, so neurosim reads a diagonal layer back as one.
    """
    n = m.features
    if shape != (n,):
        raise NIRExportError(f"{where}: an RLIF({n}) layer takes a 1-d input of {n} features, but this layer gets "
                             f"shape {shape}")
    rec = m.recurrent
    if not isinstance(rec, (nn.Linear, DiagonalRecurrent)):  # (a parametrized one, e.g. a shared V, is a subclass)
        raise NIRExportError(
            f"{where}: its feedback weights (.recurrent) are a {type(rec).__name__}, which has no NIR equivalent "
            "(a chip's read noise, ADC and other non-idealities are not NIR parameters; exporting its .weight "
            "would drop them); export the model before apply_nonidealities, as for a feed-forward layer")
    lif = _neuron_node(m.lif, shape, dt_s, where)
    if m.connectivity == "dense":
        w = _np(rec.weight)
    else:
        w = np.diag(_np(rec.weight))
    bias = getattr(rec, "bias", None)
    syn = nir.Linear(weight=w) if bias is None else nir.Affine(weight=w, bias=_np(bias))
    _typed(syn, shape, shape)
    meta = {META_KEY: {"layer": "RLIF", "connectivity": m.connectivity}}
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array(shape)), neuron: lif, "recurrent": syn,
               "output": nir.Output(output_type=np.array(shape))},
        edges=[("input", neuron), (neuron, "recurrent"), ("recurrent", neuron), (neuron, "output")],
        metadata=meta, type_check=True,
    )


def _pool_node(m: nn.Module, shape: tuple[int, ...], out: tuple[int, ...], maxpool: str, where: str):
    if len(shape) != 3:
        raise NIRExportError(f"{where}: pooling needs per-sample input (C, H, W), got {shape}")
    kind = type(m).__name__
    if getattr(m, "ceil_mode", False):
        raise NIRExportError(f"{where}: {kind}(ceil_mode=True) has no NIR equivalent (NIR pools round down)")
    k, s, p = _pair(m.kernel_size, "kernel_size", where), _pair(m.stride, "stride", where), \
        _pair(m.padding, "padding", where)
    meta: dict[str, Any] = {}
    if isinstance(m, nsn.MaxPool2d):
        if maxpool == "error":
            raise NIRExportError(
                f"{where}: MaxPool2d has no NIR node. On binary spikes max pooling equals min(1, sum pooling); "
                "pass maxpool='sumpool' (on the command line: --maxpool sumpool) to export it as SumPool2d (the "
                "same connectivity, sum-pool dynamics for other tools; neurosim imports it back as MaxPool2d), or "
                "rebuild the model with SumPool2d/AvgPool2d"
            )
        if _pair(m.dilation, "dilation", where) != (1, 1) or m.return_indices:
            raise NIRExportError(f"{where}: MaxPool2d with dilation or return_indices has no NIR equivalent")
        cls, meta = nir.SumPool2d, {META_KEY: {"layer": "MaxPool2d"}}
    elif isinstance(m, nsn.SumPool2d):
        cls = nir.SumPool2d
    else:  # AvgPool2d
        if m.divisor_override is not None or (not m.count_include_pad and p != (0, 0)):
            raise NIRExportError(f"{where}: AvgPool2d with divisor_override or count_include_pad=False and padding "
                                 "has no NIR equivalent")
        cls = nir.AvgPool2d
    node = cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p), metadata=meta)
    return _typed(node, shape, out)


def _export_names(model, modules: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``({module: node name}, {recurrent module: its neuron's name in its subgraph})`` for :func:`to_nir`: the
    module names, except in a model from :func:`from_nir`, whose layers keep its graph's node names
    (``model.nir_node_names``: ``0.1`` for module ``0_1``, a recurrent layer's neuron ``1.lif`` too where the
    subgraph can name it so), as :func:`neurosim.activity.activity_profile` names them: the profile of the
    imported model then fits its export as it fits the file it came from. A layer added after the import keeps its
    module name; names that would clash leave every layer its module name."""
    given = getattr(model, "nir_node_names", None)
    if not isinstance(given, dict) or not given:
        return {m: m for m in modules}, {}
    node_of = {m: str(given.get(m, m)) for m in modules}
    if len(set(node_of.values())) != len(node_of):
        return {m: m for m in modules}, {}
    neuron_of = {}
    for m in modules:
        full, head = given.get(f"{m}.lif"), node_of[m] + "."
        if isinstance(full, str) and full.startswith(head) and full[len(head):] not in ("", "input", "output",
                                                                                       "recurrent"):
            neuron_of[m] = full[len(head):]
    return node_of, neuron_of


def to_nir(model, input_shape, dt_s: float = 1e-3, *, maxpool: str = "error") -> nir.NIRGraph:
    """Describe a model as a NIR graph (at inference: BatchNorm folded, dropout dropped).

    Args:
        model: a neurosim :class:`~neurosim.nn.Sequential` (e.g. from :func:`neurosim.nn.build_model`), or an
            snnTorch ``nn.Sequential`` that :func:`neurosim.interop.from_snntorch` converts.
        input_shape: per-sample input shape without time and batch, e.g. ``(2, 34, 34)`` or ``(700,)``.
        dt_s: seconds per time step; sets the NIR time constants (``τ = dt/(1 − β)``).
        maxpool: ``error`` (default: MaxPool2d raises) or ``sumpool`` (export MaxPool2d as SumPool2d, exact on
            binary spikes up to ``min(1, ·)``; see the module docstring).

    Returns:
        A type-checked ``nir.NIRGraph``: ``input`` → one node per layer, named as in ``named_modules()`` (a model
        from :func:`from_nir`: as in the graph it came from, ``model.nir_node_names``) → ``output``; every node has
        its input and output type.

    Raises:
        NIRExportError: a layer without NIR equivalent (named), or a shape that does not fit.
        TypeError: ``model`` is not a sequential model.
    """
    dt_s = _check_dt(dt_s)
    if maxpool not in MAXPOOL_MODES:
        raise ValueError(f"maxpool must be one of {MAXPOOL_MODES}, got {maxpool!r}")
    model = _to_neurosim(model)
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a sequence of positive ints (no time/batch dims), got "
                         f"{input_shape!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"input_shape must be a non-empty sequence of positive ints, got {input_shape!r}")

    layers = [(n, m) for n, m in _as_layers(model) if not isinstance(m, (nn.Identity, nsn.Dropout))]
    node_of, neuron_of = _export_names(model, [n for n, _ in layers])
    names = set(node_of.values())
    io_in = next(c for c in ("input", "input_", "nir_input") if c not in names)
    io_out = next(c for c in ("output", "output_", "nir_output") if c not in names)
    nodes: dict[str, nir.NIRNode] = {io_in: nir.Input(input_type=np.array(shape))}
    chain = [io_in]
    i = 0
    while i < len(layers):
        name, m = layers[i]
        where = f"layer {name!r} ({type(m).__name__})"
        bn = None
        if isinstance(m, (nn.Linear, nsn.Conv2d)) and i + 1 < len(layers) and \
                isinstance(layers[i + 1][1], nn.modules.batchnorm._BatchNorm):
            bn = layers[i + 1][1]
            i += 1
        i += 1
        if isinstance(m, nn.Linear):
            if len(shape) != 1 or shape[0] != m.in_features:
                raise NIRExportError(f"{where}: NIR's Affine/Linear take a 1-d input of {m.in_features} features, "
                                     f"but this layer gets shape {shape}; put a Flatten before it")
            w, b = (m.weight, m.bias) if bn is None else _fold_bn(m.weight, m.bias, bn, where)
            meta = {META_KEY: {"folded_batch_norm": layers[i - 1][0]}} if bn is not None else {}
            node = nir.Linear(weight=_np(w), metadata=meta) if b is None else \
                nir.Affine(weight=_np(w), bias=_np(b), metadata=meta)
            out = (m.out_features,)
            _typed(node, shape, out)
        elif isinstance(m, nsn.Conv2d):
            if len(shape) != 3 or shape[0] != m.in_channels:
                raise NIRExportError(f"{where}: expects per-sample input ({m.in_channels}, H, W), got {shape}")
            if m.padding_mode != "zeros":
                raise NIRExportError(f"{where}: padding_mode={m.padding_mode!r} has no NIR equivalent (zeros only)")
            out = _run_shape(m, shape, where)
            if isinstance(m.padding, str):  # 'valid' / 'same' → explicit pixels (torch allows 'same' at stride 1)
                k, d = m.kernel_size, m.dilation
                if m.padding == "valid":
                    pad = (0, 0)
                elif all(d[j] * (k[j] - 1) % 2 == 0 for j in range(2)):
                    pad = tuple(d[j] * (k[j] - 1) // 2 for j in range(2))
                else:
                    raise NIRExportError(f"{where}: padding='same' with an even kernel pads asymmetrically, which "
                                         "NIR cannot express; use explicit padding")
            else:
                pad = _pair(m.padding, "padding", where)
            w, b = (m.weight, m.bias) if bn is None else _fold_bn(m.weight, m.bias, bn, where)
            b = torch.zeros(m.out_channels, dtype=m.weight.dtype) if b is None else b
            meta = {META_KEY: {"folded_batch_norm": layers[i - 1][0]}} if bn is not None else {}
            node = nir.Conv2d(input_shape=shape[1:], weight=_np(w), stride=tuple(m.stride), padding=pad,
                              dilation=tuple(m.dilation), groups=int(m.groups), bias=_np(b), metadata=meta)
            _typed(node, shape, out)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise NIRExportError(f"{where}: BatchNorm is folded into the Linear/Conv2d right before it, but this "
                                 "one follows another kind of layer; NIR has no normalisation node")
        elif isinstance(m, (nsn.MaxPool2d, nsn.AvgPool2d, nsn.SumPool2d)):
            out = _run_shape(m, shape, where)
            node = _pool_node(m, shape, out, maxpool, where)
        elif type(m) is nsn.Flatten:
            out = (int(np.prod(shape)),)
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            _typed(node, shape, out)
        elif isinstance(m, (nsn.LIF, nsn.LI)):
            out = shape
            node = _neuron_node(m, shape, dt_s, where)
        elif isinstance(m, nsn.RLIF):
            out = shape
            node = _recurrent_node(m, shape, dt_s, where, neuron_of.get(name, "lif"))
        elif isinstance(m, nsn.CubaLIF):
            out = shape
            node = _cuba_node(m, shape, dt_s, where)
        else:
            raise NIRExportError(f"{where} has no NIR equivalent; supported layers: {_EXPORTABLE}")
        nodes[node_of[name]] = node
        chain.append(node_of[name])
        shape = out
    nodes[io_out] = nir.Output(output_type=np.array(shape))
    chain.append(io_out)
    meta = {META_KEY: {"format_version": FORMAT_VERSION, "dt_s": dt_s, "exporter": "neurosim.export.to_nir"}}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])), metadata=meta, type_check=True)


# ------------------------------------------------------------------------------------------------ files
def write_nir(graph: nir.NIRGraph, path: str | Path) -> Path:
    """Write ``graph`` to a ``.nir`` (HDF5) file atomically: serialised in memory, then a temporary file in the
    same folder is moved over ``path``, so an interrupted write never leaves a half-written file."""
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"write_nir needs a nir.NIRGraph (see to_nir), got {type(graph).__name__}")
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the .nir file's name (e.g. {Path(path) / 'model.nir'})")
    buf = io.BytesIO()
    nir.write(buf, graph)
    return atomic_write_bytes(path, buf.getvalue())


def read_nir(path: str | Path, *, type_check: bool = True) -> nir.NIRGraph:
    """Read a ``.nir`` file with type checking, with an error that names the file.

    nir (1.0) rebuilds a conv's types from its weight as if the conv were ungrouped (and, for ``Conv2d``, square):
    the input with ``weight.shape[1]`` channels (``C_in / groups`` for a grouped, e.g. depthwise, conv) and a
    ``Conv2d``'s output with ``weight.shape[2]`` as the kernel's size in both dimensions, so its own type check
    rejects grouped ``Conv1d``/``Conv2d`` layers and non-square kernels. Their types are computed again from the
    whole kernel before the types are checked, in nested subgraphs too (which ``nir.read(type_check=False)``
    type-checks all the same, so the file is read without checking any).

    Args:
        path: the ``.nir`` file.
        type_check: False reads the graph as stored (the convs' types repaired, nothing inferred or checked), for
            a reader with checks of its own: the NIR paper's Rockpool file types a 1-neuron LIF's Output
            ``[1, 1, 1]``, which nir's check refuses and :func:`hardware_models.analyze` reads (the same number of
            elements). nir's inference would also add an ``Input`` node in front of a root node; this does not.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        graph = _read_unchecked(path)
        _repair_conv_types(graph)
    except Exception as e:  # noqa: BLE001 - h5py and nir raise many kinds; report the file
        raise ValueError(f"{path}: not a readable NIR graph ({type(e).__name__}: {e})") from None
    if type_check:
        try:
            graph.infer_types()  # what nir.read's type check does
            graph.check_types()
        except Exception as e:  # noqa: BLE001 - nir raises several kinds
            raise ValueError(f"{path}: nir's type check refuses the graph ({type(e).__name__}: {e}); "
                             "read_nir(path, type_check=False) reads it as stored") from None
    return graph


def _read_unchecked(path: Path) -> nir.NIRGraph:
    """``nir.read(path, type_check=False)`` for nested subgraphs too: nir (1.0) builds those with its default
    type check, which refuses a grouped conv inside one before :func:`_repair_conv_types` can set its types."""
    try:
        import h5py
        from nir.serialization import hdf2dict
    except ImportError:  # another nir layout: its own reader
        return nir.read(str(path), type_check=False)

    def unchecked(d: dict) -> None:
        if d.get("type") in ("NIRGraph", b"NIRGraph"):
            d["type_check"] = False
            for node in (d.get("nodes") or {}).values():
                unchecked(node)

    with h5py.File(path, "r") as f:
        data = hdf2dict(f["node"])
    unchecked(data)
    return nir.dict2NIRNode(data)


def _repair_conv_types(graph: nir.NIRGraph) -> None:
    """Recompute the types of every conv with a declared input size (see :func:`read_nir`), subgraphs included."""
    for node in graph.nodes.values():
        if isinstance(node, nir.NIRGraph):
            _repair_conv_types(node)
        elif isinstance(node, nir.Conv2d) and node.input_shape is not None:
            _conv2d_types(node)
        elif isinstance(node, nir.Conv1d) and node.input_shape is not None:
            _conv1d_types(node)


def _conv1d_types(node: nir.Conv1d) -> None:
    """Set ``node``'s input and output types from its whole weight ``(C_out, C_in / groups, k)``."""
    from nir.ir.conv import calculate_conv_output

    groups = int(getattr(node, "groups", 1) or 1)
    c_out, c_in_group, k = node.weight.shape
    length = int(np.asarray(node.input_shape).ravel()[0])
    out = calculate_conv_output(length, node.padding, node.dilation, k, node.stride)
    node.input_type = {"input": np.array([c_in_group * groups, length])}
    node.output_type = {"output": np.array([c_out, *out])}


def _conv2d_types(node: nir.Conv2d) -> None:
    """Set ``node``'s input and output types from its whole weight ``(C_out, C_in / groups, kH, kW)``."""
    from nir.ir.conv import calculate_conv_output

    groups = int(getattr(node, "groups", 1) or 1)
    c_out, c_in_group, kh, kw = node.weight.shape
    spatial = tuple(int(v) for v in node.input_shape)
    out = calculate_conv_output(spatial, node.padding, node.dilation, (kh, kw), node.stride)
    node.input_type = {"input": np.array([c_in_group * groups, *spatial])}
    node.output_type = {"output": np.array([c_out, *out])}


# ------------------------------------------------------------------------------------------------ import
_SPIKING = (nir.LIF, nir.IF)
_LOOP = "Input → LIF/IF ⇄ Linear/Affine (N × N), LIF/IF → Output"
_FLAT_LOOP = "LIF/IF ⇄ Linear/Affine (N × N), the Linear/Affine fed by and feeding that neuron alone"
# a flat loop put into a subgraph by _collapse_loops keeps the user's node names here, for the error messages
_FLAT_KEY = "neurosim_flat_loop"
_NEURONS = tuple(getattr(nir, k) for k in ("LIF", "IF", "CubaLIF", "LI", "I", "CubaLI") if hasattr(nir, k))


def _recurrent_parts(sub: nir.NIRGraph, key: str) -> tuple[str, str]:
    """``(neuron, synapse)`` node names of a subgraph that is one recurrent LIF layer (:data:`_LOOP`: what
    :func:`to_nir` writes for an RLIF and snnTorch for an ``RLeaky``); NIRImportError naming ``key`` otherwise."""
    nodes = sub.nodes
    kinds = {k: type(n).__name__ for k, n in nodes.items()}
    ins = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    lifs = [k for k, n in nodes.items() if isinstance(n, _SPIKING)]
    syns = [k for k, n in nodes.items() if isinstance(n, (nir.Linear, nir.Affine))]
    edges = {(str(a), str(b)) for a, b in sub.edges}
    if len(nodes) == 4 and len(ins) == len(outs) == len(lifs) == len(syns) == 1:
        i, o, lif, syn = ins[0], outs[0], lifs[0], syns[0]
        if edges == {(i, lif), (lif, syn), (syn, lif), (lif, o)} and len(sub.edges) == 4:
            return lif, syn
    raise NIRImportError(
        f"node {key!r} is a nested NIR graph (nodes {kinds}, edges {sorted(edges)}) but not a recurrent LIF layer; "
        f"neurosim imports a subgraph only as an RLIF: {_LOOP}"
    )


def _collapse_loops(graph: nir.NIRGraph) -> nir.NIRGraph:
    """``graph`` with every flat recurrent loop ``LIF → W → LIF`` (``W`` a Linear/Affine whose only input and only
    output is that neuron: snnTorch's flat ``RLeaky`` export) put into a subgraph of the :data:`_LOOP` form, named
    after the neuron's prefix (``1`` for ``1.lif`` and ``1.w_rec``) or the neuron. The subgraph's inner nodes keep
    the file's names where they can (``metadata[_FLAT_KEY]`` holds them), so errors name the nodes the file has.

    Raises:
        NIRImportError: a neuron with several feedback synapses (an RLIF has one), or two nodes that feed each other
            in another form (a CubaLIF, a Scale, a synapse with other inputs or outputs); the message names the
            nodes and says which loop is supported. Longer cycles are left to :func:`_chain`.
    """
    nodes = dict(graph.nodes)
    edges = [(str(a), str(b)) for a, b in graph.edges]
    edge_set = set(edges)
    found: dict[str, list[str]] = {}  # neuron -> its feedback synapses
    for syn, node in nodes.items():
        if not isinstance(node, (nir.Linear, nir.Affine)):
            continue
        pre = [a for a, b in edges if b == syn]
        post = [b for a, b in edges if a == syn]
        if len(pre) == len(post) == 1 and pre == post and isinstance(nodes.get(pre[0]), _SPIKING):
            found.setdefault(pre[0], []).append(syn)
    for lif, syns in found.items():
        if len(syns) > 1:
            raise NIRImportError(
                f"node {lif!r} ({type(nodes[lif]).__name__}) has {len(syns)} feedback synapses {syns}, each fed by it "
                f"and feeding it back; neurosim imports a recurrent layer with one ({_FLAT_LOOP}): add their weight "
                "matrices into one Linear/Affine")
    looped = {(lif, syns[0]) for lif, syns in found.items()} | {(syns[0], lif) for lif, syns in found.items()}
    for a, b in edges:  # any other pair of nodes that feed each other: say what a recurrent loop must be
        if (b, a) in edge_set and (a, b) not in looped and a != b:
            if isinstance(nodes.get(b), _NEURONS) and not isinstance(nodes.get(a), _NEURONS):
                a, b = b, a  # the neuron first
            ka, kb = type(nodes.get(a)).__name__, type(nodes.get(b)).__name__
            neuron_ok = isinstance(nodes.get(a), _SPIKING)
            syn_ok = isinstance(nodes.get(b), (nir.Linear, nir.Affine))
            why = (f"{a!r} is a {ka}, not a LIF/IF" if not neuron_ok else
                   f"{b!r} is a {kb}, not a Linear/Affine" if not syn_ok else
                   f"{b!r} also has other inputs or outputs "
                   f"({sorted(({x for x, y in edges if y == b} | {y for x, y in edges if x == b}) - {a})})")
            raise NIRImportError(
                f"nodes {a!r} ({ka}) and {b!r} ({kb}) feed each other, but {why}; neurosim imports a recurrent loop "
                f"only as {_FLAT_LOOP} (or the nested graph {_LOOP})")
    if not found:
        return graph
    for lif, (syn,) in found.items():
        head = lif.rpartition(".")[0]
        key = head if head and head == syn.rpartition(".")[0] and head not in nodes else lif
        inner_in, inner_out = "input", "output"
        lif_in, syn_in = lif, syn  # the file's names inside the subgraph, unless they clash with its ports
        if {lif_in, syn_in} & {inner_in, inner_out} or lif_in == syn_in:
            lif_in, syn_in = "lif", "recurrent"
        shape = np.asarray(np.asarray(nodes[syn].weight).shape[:1])
        sub = nir.NIRGraph(
            nodes={inner_in: nir.Input(input_type=shape), lif_in: nodes[lif], syn_in: nodes[syn],
                   inner_out: nir.Output(output_type=shape)},
            edges=[(inner_in, lif_in), (lif_in, syn_in), (syn_in, lif_in), (lif_in, inner_out)],
            metadata={_FLAT_KEY: (lif, syn)}, type_check=False)
        edges = [e for e in edges if e not in ((lif, syn), (syn, lif))]
        edges = [(key if a == lif else a, key if b == lif else b) for a, b in edges]
        nodes = {(key if k == lif else k): (sub if k == lif else n) for k, n in nodes.items() if k != syn}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False)


def _chain(graph: nir.NIRGraph) -> list[str]:
    nodes = graph.nodes
    for k, n in nodes.items():
        if isinstance(n, nir.NIRGraph):
            _recurrent_parts(n, k)  # a recurrent layer, or an error naming the subgraph
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in graph.edges:
        a, b = str(a), str(b)
        for n in (a, b):
            if n not in nodes:
                raise NIRImportError(f"edge ({a!r}, {b!r}) names node {n!r}, which is not in the graph; "
                                     f"nodes: {list(nodes)}")
        succ[a].append(b)
        pred[b].append(a)
    for k in nodes:
        if len(succ[k]) > 1:
            raise NIRImportError(f"node {k!r} ({type(nodes[k]).__name__}) branches to {succ[k]}; neurosim imports "
                                 "linear chains only (no branches, skips or recurrence)")
        if len(pred[k]) > 1:
            raise NIRImportError(f"node {k!r} ({type(nodes[k]).__name__}) has several inputs {pred[k]}; neurosim "
                                 "imports linear chains only (no merges, skips or recurrence)")
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise NIRImportError(f"the graph needs exactly one Input node, found {inputs}")
    order, k = [inputs[0]], inputs[0]
    while succ[k]:
        k = succ[k][0]
        if k in order:
            raise NIRImportError(f"node {k!r} is on a cycle; neurosim imports feed-forward chains, and recurrent "
                                 f"layers in the form {_LOOP}")
        order.append(k)
    stray = [n for n in nodes if n not in order]
    if stray:
        raise NIRImportError(f"node(s) {stray} are not on the chain from {inputs[0]!r}; neurosim imports one "
                             "connected linear chain")
    for k in order[1:-1]:
        if isinstance(nodes[k], (nir.Input, nir.Output)):
            raise NIRImportError(f"node {k!r} ({type(nodes[k]).__name__}) sits inside the chain")
    return order


def _meta(node) -> dict[str, Any]:
    md = getattr(node, "metadata", None)
    m = md.get(META_KEY) if isinstance(md, dict) else None
    return m if isinstance(m, dict) else {}


def _uniform(value, shape: tuple[int, ...], what: str, where: str) -> float:
    """The one value of a per-neuron parameter: of the neurons' shape, or of any shape with as many elements
    (e.g. ``(32,)`` for neurons ``(2, 4, 4)`` after a conv: a uniform value has no layout to get wrong), or 1."""
    a = np.asarray(value, dtype=np.float64)
    if a.size != 1 and a.size != math.prod(shape):
        raise NIRImportError(f"{where}: {what} has shape {a.shape} ({a.size} values) but the neurons have shape "
                             f"{shape} ({math.prod(shape)} neurons); give one value per neuron, or a single value")
    if a.size == 0:
        raise NIRImportError(f"{where}: {what} is empty")
    lo, hi = float(a.min()), float(a.max())
    if lo != hi:
        raise NIRImportError(f"{where}: per-neuron {what} (from {lo:g} to {hi:g}); neurosim's neurons take one "
                             f"{what} per layer")
    return lo


def _ints(v, n: int, what: str, where: str) -> tuple[int, ...]:
    """``v`` (one whole number, or ``n``) as ``n`` ints; NIRImportError naming the node otherwise."""
    shown = v.tolist() if isinstance(v, np.ndarray) else v
    if v is None:
        raise NIRImportError(f"{where}: {what} is None; give a whole number or {n} of them")
    try:
        a = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise NIRImportError(f"{where}: {what} {shown!r} is not numeric; give a whole number or {n} of them") from None
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise NIRImportError(f"{where}: {what} {shown!r} should have {n} values")
    if not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
        raise NIRImportError(f"{where}: {what} {shown!r} must be whole numbers")
    return tuple(int(x) for x in a)


def _str(v) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def _input_transform(prev: nn.Module | None, gain: float, offset: float, where: str,
                     recurrent: nn.Module | None = None) -> None:
    """Fold a neuron's input gain and constant input (``v_leak·dt/τ``) into the synapse right before it (and the
    gain into a recurrent layer's feedback weights, the neuron's other input)."""
    if math.isclose(gain, 1.0, rel_tol=1e-9, abs_tol=0.0) and offset == 0.0:
        return
    if not isinstance(prev, (nn.Linear, nn.Conv2d)):
        raise NIRImportError(
            f"{where}: input gain dt·R/τ = {gain:.6g} and constant input {offset:.6g} need a Linear/Affine/Conv2d "
            "node right before the neuron to be folded into (neurosim's neurons have no input scale or leak "
            "potential); check dt_s (it must be the dt the graph was made for)"
        )
    with torch.no_grad():
        for syn in (prev, recurrent) if recurrent is not None else (prev,):
            syn.weight.mul_(gain)
            if syn.bias is not None:
                syn.bias.mul_(gain)
        if offset != 0.0:
            if prev.bias is None:
                prev.bias = nn.Parameter(torch.zeros(prev.weight.shape[0], dtype=prev.weight.dtype))
            prev.bias.add_(offset)


def _lif_from_meta(meta: dict[str, Any], beta: float, v_th: float) -> nsn.LIF:
    """The LIF a neurosim node's metadata describes (β and threshold as given; set again in the model's dtype)."""
    return nsn.LIF(
        None, float(meta["dt_ms"]), beta=beta, v_th=v_th, reset=_str(meta["reset"]),
        reset_timing=_str(meta["reset_timing"]), detach_reset=bool(meta["detach_reset"]),
        surrogate=_str(meta["surrogate"]), surrogate_alpha=float(meta["surrogate_alpha"]),
        learn_beta=bool(meta["learn_beta"]), learn_threshold=bool(meta["learn_threshold"]),
        backend=_str(meta["backend"]),
    )


def _check_meta_decay(meta: dict[str, Any], what: str, decay: float, tau: float, r: float, v_leak: float,
                      where: str) -> None:
    """NIRImportError unless ``tau`` and ``r`` (a membrane's ``τ``/``R``, or a current's ``τ_syn``/``w_in``) give the
    ``decay`` and unit gain that neurosim's metadata says at its export dt: the node was edited after export."""
    b_node, g_node = beta_gain_from_tau_r(tau, r, float(meta["export_dt_s"]))
    if not (math.isclose(b_node, decay, rel_tol=1e-6) and math.isclose(g_node, 1.0, rel_tol=1e-6) and v_leak == 0.0):
        raise NIRImportError(
            f"{where}: its neurosim metadata ({what} = {decay:.6g}) disagrees with its parameters (τ = {tau:.6g} s, "
            f"gain parameter {r:.6g}, v_leak = {v_leak:g} give {what} = {b_node:.6g}, gain {g_node:.6g} at dt = "
            f"{float(meta['export_dt_s']):g} s); the node was edited after export — remove "
            f"node.metadata[{META_KEY!r}] to import it from its NIR parameters"
        )


def _nir_lif(node, shape: tuple[int, ...], beta: float, dt_s: float, where: str, dtype: torch.dtype) -> nsn.LIF:
    """The LIF that NIR's definition of a spiking ``node`` without neurosim metadata means: reset to
    ``v_reset`` (which must be 0) in the step that spikes, a spike when ``v > v_th``."""
    v_th = _uniform(node.v_threshold, shape, "v_threshold", where)
    v_reset = _uniform(node.v_reset, shape, "v_reset", where)
    if v_reset != 0.0:
        raise NIRImportError(f"{where}: v_reset = {v_reset:g}; neurosim's LIF resets to 0 (or subtracts the "
                             "threshold), so only v_reset = 0 can be imported")
    if not v_th > 0:
        raise NIRImportError(f"{where}: v_threshold = {v_th:g}; neurosim needs a positive threshold")
    # NIR spikes when v > v_th, neurosim's immediate timing when v >= v_th: the next number above v_th in the dtype
    # the model runs in makes them agree at v == v_th too, which integer weights and thresholds (hardware graphs)
    # hit all the time (the next float32 is no use to a float64 model: 1 + 2^-30 would not spike)
    above = strict_threshold(v_th, dtype)
    lif = nsn.LIF(None, dt_s * 1e3, beta=beta, v_th=above, reset="zero", reset_timing="immediate")
    return _in_dtype(lif, dtype, beta, above)


def _import_neuron(node, shape: tuple[int, ...], dt_s: float, prev: nn.Module | None, where: str,
                   dtype: torch.dtype = torch.float32, recurrent: nn.Module | None = None) -> nn.Module:
    meta = _meta(node)
    spiking = isinstance(node, (nir.LIF, nir.IF))
    tau = math.inf if isinstance(node, (nir.IF, nir.I)) else _uniform(node.tau, shape, "tau", where)
    r = _uniform(node.r, shape, "r", where)
    v_leak = 0.0 if isinstance(node, (nir.IF, nir.I)) else _uniform(node.v_leak, shape, "v_leak", where)
    layer = _str(meta.get("layer", ""))
    if meta and layer == ("LIF" if spiking else "LI"):
        # Exported by neurosim: the stored β is exact; check the node was not edited since.
        beta = float(meta["beta"])
        _check_meta_decay(meta, "β", beta, tau, r, v_leak, where)
        if not spiking:
            return _in_dtype(nsn.LI(beta), dtype, beta)
        v_th = _uniform(node.v_threshold, shape, "v_threshold", where)
        lif = _lif_from_meta(meta, beta, v_th)
        return _in_dtype(lif, dtype, beta, v_th, float(meta["beta_logit"]) if lif.learn_beta else None)
    try:
        beta, gain = beta_gain_from_tau_r(tau, r, dt_s)
    except ValueError as e:
        raise NIRImportError(f"{where}: {e}") from None
    _input_transform(prev, gain, 0.0 if tau == math.inf else v_leak * dt_s / tau, where, recurrent)
    if not spiking:
        return _in_dtype(nsn.LI(beta), dtype, beta)
    return _nir_lif(node, shape, beta, dt_s, where, dtype)


def _import_cuba(node: nir.CubaLIF, shape: tuple[int, ...], dt_s: float, prev: nn.Module | None, where: str,
                 dtype: torch.dtype) -> nsn.CubaLIF:
    """A CubaLIF from NIR's ``CubaLIF`` node: exactly from neurosim's metadata (α, and the ``.lif`` as a LIF node's
    metadata gives it); else as NIR defines it, by forward Euler at ``dt_s`` (:func:`beta_gain_from_tau_r` for the
    current, ``τ_syn``/``w_in``, and for the membrane, ``τ_mem``/``R``), the two input gains folded into the synapse
    before it (the current and the membrane are linear in the input, so their product is the neuron's input gain).

    ``v_leak ≠ 0`` is refused: it is a constant input to the membrane, and neurosim's only constant input, a bias
    before the neuron, reaches the membrane through the decaying current (as ``b/(1 − α)`` in the long run, not at
    once), so it cannot be folded exactly."""
    meta = _meta(node)
    tau_syn = _uniform(node.tau_syn, shape, "tau_syn", where)
    w_in = _uniform(node.w_in, shape, "w_in", where)
    tau_mem = _uniform(node.tau_mem, shape, "tau_mem", where)
    r = _uniform(node.r, shape, "r", where)
    v_leak = _uniform(node.v_leak, shape, "v_leak", where)
    if meta and _str(meta.get("layer", "")) == "CubaLIF":
        alpha, beta = float(meta["alpha"]), float(meta["beta"])
        _check_meta_decay(meta, "α", alpha, tau_syn, w_in, v_leak, where)
        _check_meta_decay(meta, "β", beta, tau_mem, r, v_leak, where)
        v_th = _uniform(node.v_threshold, shape, "v_threshold", where)
        lif = _lif_from_meta(meta, beta, v_th)
        lif = _in_dtype(lif, dtype, beta, v_th, float(meta["beta_logit"]) if lif.learn_beta else None)
    else:
        if v_leak != 0.0:
            raise NIRImportError(
                f"{where}: v_leak = {v_leak:g}; a CubaLIF's leak potential is a constant input to its membrane, which "
                "neurosim cannot fold into the synapse before it (a bias there reaches the membrane through the "
                "decaying synaptic current); only v_leak = 0 can be imported")
        try:
            part = "the synaptic current (tau_syn, w_in; neurosim's alpha)"
            alpha, gain_syn = beta_gain_from_tau_r(tau_syn, w_in, dt_s)
            part = "the membrane (tau_mem, r; neurosim's beta)"
            beta, gain_mem = beta_gain_from_tau_r(tau_mem, r, dt_s)
        except ValueError as e:
            raise NIRImportError(f"{where}: {part}: {e}") from None
        _input_transform(prev, gain_syn * gain_mem, 0.0, where)
        lif = _nir_lif(node, shape, beta, dt_s, where, dtype)
    layer = nsn.CubaLIF(alpha=alpha, tau_mem_ms=None, dt_ms=lif.dt_ms, beta=0.5).to(dtype)
    layer.lif = lif
    with torch.no_grad():
        layer.syn.beta_value.fill_(alpha)  # (in the model's dtype: α = 0.9 in float64 is not float32's 0.9)
    return layer


def _import_recurrent(sub: nir.NIRGraph, key: str, shape: tuple[int, ...], dt_s: float, prev: nn.Module | None,
                      dtype: torch.dtype) -> nsn.RLIF:
    """An RLIF from a recurrent subgraph (:data:`_LOOP`): its neuron as :func:`_import_neuron` reads a LIF node
    (exactly from neurosim's metadata; else as NIR defines it, the input gain folded into the feed-forward synapse
    before the subgraph and into the feedback weights), its feedback weights and bias as they are. The subgraph's
    neurosim metadata names the connectivity; without it (snnTorch's ``RLeaky``), a diagonal matrix is read as
    ``diagonal`` (snnTorch's ``all_to_all=False``) and any other as ``dense``."""
    lif_key, syn_key = _recurrent_parts(sub, key)
    flat = (sub.metadata or {}).get(_FLAT_KEY)
    if flat:  # a loop of the file's flat graph: name its nodes as the file does
        where = f"recurrent loop {flat[0]!r} ⇄ {flat[1]!r}"
        neuron_name = flat[0]
    else:
        where = f"recurrent layer {key!r} (nested graph: {lif_key!r} ⇄ {syn_key!r})"
        neuron_name = f"{key}.{lif_key}"
    node, syn = sub.nodes[lif_key], sub.nodes[syn_key]
    w = np.asarray(syn.weight, dtype=np.float64)
    n = w.shape[0] if w.ndim == 2 else -1
    if w.ndim != 2 or w.shape != (n, n):
        raise NIRImportError(f"{where}: the feedback weight must be a square N × N matrix, got shape {w.shape}")
    if shape != (n,):
        raise NIRImportError(f"{where}: {n} recurrent neurons receive input of shape {shape}; an RLIF takes a 1-d "
                             f"input of {n} features (a Linear/Affine or Flatten before it)")
    bias = np.asarray(syn.bias, dtype=np.float64) if isinstance(syn, nir.Affine) else None
    if bias is not None and bias.shape != (n,):
        raise NIRImportError(f"{where}: feedback bias has shape {bias.shape}, expected ({n},)")
    connectivity = _str(_meta(sub).get("connectivity", ""))
    if connectivity not in CONNECTIVITIES:
        connectivity = "diagonal" if n > 1 and np.array_equal(w, np.diag(np.diag(w))) else "dense"
    elif connectivity == "diagonal" and not np.array_equal(w, np.diag(np.diag(w))):
        raise NIRImportError(f"{where}: its neurosim metadata says diagonal connectivity but the feedback matrix has "
                             "weights off its diagonal; the node was edited after export")
    layer = nsn.RLIF(n, None, 1.0, connectivity=connectivity, bias=bias is not None, beta=0.5).to(dtype)
    with torch.no_grad():
        layer.recurrent.weight.copy_(torch.tensor(w if connectivity == "dense" else np.diag(w).copy()))
        if bias is not None:
            layer.recurrent.bias.copy_(torch.tensor(bias))
    if not isinstance(node, _SPIKING):
        raise NIRImportError(f"{where}: node {lif_key!r} must be LIF or IF")
    layer.lif = _import_neuron(node, shape, dt_s, prev, f"node {neuron_name} ({type(node).__name__})", dtype,
                               recurrent=layer.recurrent)
    return layer


def _in_dtype(layer: nn.Module, dtype: torch.dtype, beta: float, v_th: float | None = None,
              beta_logit: float | None = None) -> nn.Module:
    """``layer`` (an ``LI`` or ``LIF``) in ``dtype``, with β (or, learnt, its logit) and the threshold set in it.

    The layers make their β and threshold tensors in float32: converted with ``.to(float64)`` they would keep
    float32's precision (β = 0.9 as 0.8999999761581421), so they are filled again after the conversion.
    """
    layer = layer.to(dtype)
    with torch.no_grad():
        if getattr(layer, "learn_beta", False):  # (a learnt β comes with its logit, from neurosim's metadata)
            layer.beta_logit.fill_(beta_logit)
        else:
            layer.beta_value.fill_(beta)
        if v_th is not None:
            (layer.v_th_param if layer.learn_threshold else layer.v_th_value).fill_(v_th)
    return layer


def _module_name(node_name: str, taken: set[str]) -> str:
    base = "".join(c if (c.isalnum() or c == "_") else "_" for c in node_name) or "layer"
    name = base if not hasattr(nsn.Sequential, base) else f"n_{base}"
    k = 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


DEFAULT_IMPORT_DT_S = 1e-3  # from_nir's dt for nodes without neurosim metadata when none is given (with a warning)


def _decays_read_at_dt(graph: nir.NIRGraph, order: list[str]) -> list[str]:
    """The chain's neuron nodes (a recurrent layer's neuron too) without neurosim metadata: their decay and input
    gain per step come from ``τ`` and ``R`` at the ``dt_s`` the import is given, which the graph does not record."""
    found = []
    for key in order:
        node = graph.nodes[key]
        if isinstance(node, nir.NIRGraph):
            flat = (node.metadata or {}).get(_FLAT_KEY)  # a loop of the file's flat graph: its neuron's own name
            found += [flat[0] if flat else f"{key}.{k}" for k, n in node.nodes.items()
                      if isinstance(n, (nir.LIF, nir.IF, nir.LI, nir.I, nir.CubaLIF)) and not _meta(n)]
        elif isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I, nir.CubaLIF)) and not _meta(node):
            found.append(key)
    return found


def from_nir(graph: nir.NIRGraph, dt_s: float | None = None, *,
             dtype: torch.dtype = torch.float32) -> nsn.Sequential:
    """Build a runnable neurosim model from a linear-chain NIR graph.

    Nodes exported by :func:`to_nir` are restored exactly from their neurosim metadata (reset mode and timing,
    MaxPool2d, learnable parameters), so ``from_nir(to_nir(model, ...))`` gives the same spikes as ``model`` in
    eval mode. Other nodes are read as NIR defines them (reset to zero; see the module docstring), with
    ``dt_s`` turning their time constants into per-step decays.

    Args:
        graph: a ``nir.NIRGraph`` that is one chain ``Input → … → Output``; a recurrent layer in it (a subgraph
            or a flat loop ``LIF/IF ⇄ Linear/Affine``, see the module docstring) becomes an ``RLIF``.
        dt_s: seconds per time step for nodes without neurosim metadata (the dt the graph was made for:
            snnTorch's ``export_to_nir`` writes for 1e-4). NIR graphs do not record it; when not given, 1e-3 is
            used, with a warning naming the neurons it decides (neurosim's own nodes keep their exported β).
        dtype: floating dtype of the model's parameters.

    Returns:
        A neurosim :class:`~neurosim.nn.Sequential` in eval mode, ``net(x_seq [T, B, ...]) -> (out_seq, state)``;
        its children are named after the graph's nodes (``.`` and other characters torch forbids become ``_``), and
        ``net.nir_node_names`` maps each module name back to its node (a recurrent layer's ``k.lif`` to its neuron
        node): :func:`neurosim.activity.activity_profile` names the profile's nodes by it, so the profile of
        ``net`` fits the graph (``neurosim estimate --nir FILE --activity``) whatever its node names, and
        :func:`to_nir` names its export's nodes by it too (a plain attribute: ``copy.deepcopy`` and
        ``torch.save(net)`` keep it, a ``state_dict`` does not hold it). The profile's Input node is still
        ``input`` unless ``activity_profile(..., input_name=...)`` names the graph's.

    Raises:
        NIRImportError: naming the node that is unsupported, branches, or has parameters neurosim cannot run.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"from_nir needs a nir.NIRGraph (e.g. from read_nir), got {type(graph).__name__}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype (torch.float32, torch.float64), got {dtype!r}")
    given = dt_s is not None
    dt_s = _check_dt(dt_s if given else DEFAULT_IMPORT_DT_S)
    graph = _collapse_loops(graph)
    order = _chain(graph)
    read_at_dt = [] if given else _decays_read_at_dt(graph, order)
    if read_at_dt:  # (a warning, not an error: 1e-3 was the default before, and is right for some tools' graphs)
        warnings.warn(
            f"from_nir: neuron node(s) {', '.join(map(repr, read_at_dt))} carry no neurosim metadata (another "
            f"tool's graph), so their decays per step come from their τ at dt_s = {DEFAULT_IMPORT_DT_S:g} s, the "
            "default; a NIR graph does not record its dt: pass the dt_s it was written for (snnTorch's export_to_nir "
            "writes τ = dt/(1 − β) for dt = 1e-4 s, so from_nir(graph, dt_s=1e-4) gives its β; at 1e-3 β = 0.9 "
            "would be 0)", UserWarning, stacklevel=2)
    first = graph.nodes[order[0]]
    in_t = first.input_type.get("input") if isinstance(first.input_type, dict) else None
    if in_t is None:
        raise NIRImportError(f"Input node {order[0]!r} has no shape")
    shape = tuple(int(d) for d in np.atleast_1d(in_t))
    modules: list[tuple[str, nn.Module]] = []
    taken: set[str] = set()
    node_names: dict[str, str] = {}  # module name -> the graph's node name (a recurrent layer's neuron too)
    for key in order[1:]:
        node = graph.nodes[key]
        kind = type(node).__name__
        where = f"node {key!r} ({kind})"
        prev = modules[-1][1] if modules else None
        if isinstance(node, nir.Output):
            break
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = np.asarray(node.weight)
            if w.ndim != 2:
                raise NIRImportError(f"{where}: weight must be 2-d (out, in), got shape {w.shape}")
            if shape != (w.shape[1],):
                raise NIRImportError(f"{where}: takes {w.shape[1]} inputs but receives shape {shape}")
            has_bias = isinstance(node, nir.Affine)
            m = nsn.Linear(w.shape[1], w.shape[0], bias=has_bias).to(dtype)  # weights copied in the model's dtype
            with torch.no_grad():
                m.weight.copy_(torch.as_tensor(w))
                if has_bias:
                    bias = np.asarray(node.bias)
                    if bias.shape != (w.shape[0],):
                        raise NIRImportError(f"{where}: bias shape {bias.shape} does not match {w.shape[0]} outputs")
                    m.bias.copy_(torch.as_tensor(bias))
        elif isinstance(node, nir.Conv2d):
            w = np.asarray(node.weight)
            groups = int(np.asarray(node.groups))
            if w.ndim != 4 or len(shape) != 3 or shape[0] != w.shape[1] * groups:
                raise NIRImportError(f"{where}: weight {w.shape} with groups={groups} does not take input {shape}")
            if isinstance(node.padding, str):
                padding: Any = _str(node.padding)
            else:
                padding = _ints(node.padding, 2, "padding", where)
            bias = np.asarray(node.bias) if node.bias is not None else np.zeros(w.shape[0])
            has_bias = bool(np.any(bias != 0))
            m = nsn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]),
                           stride=_ints(node.stride, 2, "stride", where), padding=padding,
                           dilation=_ints(node.dilation, 2, "dilation", where), groups=groups, bias=has_bias).to(dtype)
            with torch.no_grad():
                m.weight.copy_(torch.as_tensor(w))
                if has_bias:
                    m.bias.copy_(torch.as_tensor(bias.reshape(-1)))
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            if len(shape) != 3:
                raise NIRImportError(f"{where}: pooling needs input (C, H, W), got {shape}")
            k = _ints(node.kernel_size, 2, "kernel_size", where)
            # stride None: the kernel size, as PyTorch's pooling layers (and older sinabs exports) mean it
            s = k if node.stride is None else _ints(node.stride, 2, "stride", where)
            p = _ints(node.padding, 2, "padding", where)
            if isinstance(node, nir.AvgPool2d):
                m = nsn.AvgPool2d(k, s, p)
            elif _str(_meta(node).get("layer", "")) == "MaxPool2d":
                m = nsn.MaxPool2d(k, s, p)
            else:
                m = nsn.SumPool2d(k, s, p)
        elif isinstance(node, nir.Flatten):
            nd = len(shape)
            start, end = int(node.start_dim), int(node.end_dim)
            start, end = start + nd if start < 0 else start, end + nd if end < 0 else end
            if nd > 1 and (start, end) != (0, nd - 1):
                raise NIRImportError(f"{where}: flattens dims {int(node.start_dim)}..{int(node.end_dim)} of shape "
                                     f"{shape}; neurosim's Flatten flattens every dim after time and batch")
            m = nsn.Flatten()
        elif isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
            m = _import_neuron(node, shape, dt_s, prev, where, dtype)
        elif isinstance(node, nir.NIRGraph):
            m = _import_recurrent(node, key, shape, dt_s, prev, dtype)
        elif isinstance(node, nir.CubaLIF):
            m = _import_cuba(node, shape, dt_s, prev, where, dtype)
        else:
            raise NIRImportError(f"{where}: node type {kind} is not supported; neurosim imports {_IMPORTABLE}")
        m = m.to(dtype)
        if not isinstance(m, (nsn.LIF, nsn.LI, nsn.RLIF, nsn.CubaLIF)):  # (neurons keep the shape)
            try:
                with torch.no_grad():
                    y = m(torch.zeros(1, 1, *shape, dtype=dtype))
            except Exception as e:  # noqa: BLE001 - torch shape errors: report the node and the shape
                raise NIRImportError(f"{where}: cannot take input of shape {shape} ({type(e).__name__}: {e})") from None
            shape = tuple(int(d) for d in y.shape[2:])
        name = _module_name(key, taken)
        modules.append((name, m))
        node_names[name] = key
        if isinstance(node, nir.NIRGraph):  # its neuron: node 'key.lif' once inlined, or the flat loop's own name
            flat = (node.metadata or {}).get(_FLAT_KEY)
            node_names[f"{name}.lif"] = flat[0] if flat else f"{key}.{_recurrent_parts(node, key)[0]}"
    if not modules:
        raise NIRImportError("the graph has no layers between its Input and Output")
    net = nsn.Sequential(OrderedDict(modules))
    net.nir_node_names = node_names  # what activity_profile names its nodes by default: the graph's, not the modules'
    return net.to(dtype).eval()
