r"""snnTorch → neurosim: convert a model built from ``snntorch.Leaky``, ``snntorch.RLeaky``, ``snntorch.Synaptic``
and ``torch.nn`` layers so that neurosim's methods (BPTT, SLTT, SLTT-K) can train it, and copy the trained values back.

snnTorch models step one time step per call and keep the membrane in the neurons; neurosim models take the
whole sequence ``[T, B, ...]`` and return an explicit state. The converted network computes exactly what the
snnTorch one does: every ``Leaky`` becomes :class:`neurosim.nn.LIF` with ``reset_timing="delayed"``, which is
snnTorch's discretisation (reset from the previous membrane, detached, subtracted undecayed; spike when
``v > v_th`` strictly; β clamped to [0, 1]) — see :mod:`neurosim.functional.lif`. Spikes and membrane traces
are identical, and so are BPTT gradients with respect to each neuron's input (``reset_delay=False`` differs in
the recorded membrane and rounding: see below); a ``Linear``'s or ``Conv2d``'s weight gradient agrees to float
rounding, since neurosim applies the layer to all ``T·B`` inputs at once and sums them in another order (in
float32, 7.6e-6 where the largest is 32). Every ``RLeaky`` becomes :class:`neurosim.nn.RLIF` on the same LIF, its
spikes fed back through the same weights: ``mem[t] = β·mem[t−1] + x[t] + V(spk[t−1]) − reset``, with
``spk[0] = 0`` as snnTorch starts.
Every ``Synaptic`` becomes :class:`neurosim.nn.CubaLIF` on the same LIF: ``syn[t] = α·syn[t−1] + x[t]``,
``mem[t] = β·mem[t−1] + syn[t] − reset`` (α clamped to [0, 1] as snnTorch clamps it every step).

Supported (``model`` is an ``nn.Sequential`` or a list of layers in execution order; nested ``nn.Sequential``
is flattened; ``nn.Identity`` is dropped; a module at several places, e.g. one ``nn.MaxPool2d(2)`` after each conv,
converts at each place where it has no parameters and no state of its own, and is refused where it has: tied
weights, one BatchNorm's running statistics, an ``init_hidden`` neuron's one membrane):

==========================  ================================================================================
snnTorch / torch layer      neurosim layer
==========================  ================================================================================
``snntorch.Leaky``          ``LIF(reset_timing="delayed")``: scalar ``beta`` and ``threshold`` (fixed or
                            learnable; a fixed per-neuron tensor whose values are all equal, as snnTorch's
                            NIR export needs, converts as that value), ``reset_mechanism`` subtract | zero |
                            none, ``init_hidden`` either way, ``output=True`` on the last layer only (the
                            converted net returns the spikes; the membrane is in the final state with
                            ``record_membrane``, before the reset with ``reset_delay=False``: see below),
                            surrogates ``atan(alpha)`` (the default), ``fast_sigmoid(slope)``, ``sigmoid(slope)``
``snntorch.RLeaky``         ``RLIF`` on the same ``LIF`` (every ``Leaky`` option above, and ``reset_delay=False``
                            as for ``Leaky``) with the recurrence copied: ``linear_features=N`` (``all_to_all``,
                            ``recurrent`` an ``nn.Linear(N, N)``) → ``connectivity="dense"``, weight and bias;
                            ``all_to_all=False`` with ``V`` one value per neuron ``(N,)`` → ``"diagonal"``, its
                            weight ``V``; with one ``V`` for all neurons → ``"diagonal"`` whose ``[N]`` weight is
                            one shared learnable value (a ``torch.nn.utils.parametrize`` parametrization:
                            the parameter is ``recurrent.parametrizations.weight.original``, as snnTorch learns
                            one ``V``; ``N`` is read from the ``nn.Linear`` before it). ``learn_recurrent=False``:
                            the recurrent parameters do not require grad, as in snnTorch
``snntorch.Synaptic``       ``CubaLIF(alpha, reset_timing="delayed")``: every ``Leaky`` option above (learnable
                            β and threshold too), ``reset_delay=False`` with ``zero`` or ``none`` (snnTorch 1.0
                            on), and a fixed scalar ``alpha`` (or per-neuron, all equal) as the current's decay
                            (the buffer ``syn.beta_value``), ``output=True`` on the last layer (the final state
                            holds ``syn`` as ``i`` and ``mem`` as ``lif.v``)
``nn.Conv2d``, ``nn.Linear``  ``Conv2d``, ``Linear`` (weights copied)
``nn.MaxPool2d``,           ``MaxPool2d``, ``AvgPool2d``
``nn.AvgPool2d``
``nn.Flatten()``            ``Flatten`` (``start_dim=1``, ``end_dim=-1`` only)
``nn.BatchNorm1d/2d``       ``BatchNorm1d/2d`` (parameters and running statistics copied;
                            ``track_running_stats=True``, the default, only)
``nn.Dropout``              ``Dropout``
==========================  ================================================================================

Frozen parameters (``requires_grad=False``, e.g. layers kept fixed while the last ones are fine-tuned) stay frozen:
the converted copies do not require grad either, and a frozen learnable β, threshold or α converts as a fixed one.

Not supported, with a :class:`UnsupportedSnnTorchError` that lists every offending layer and option at once:
``Alpha``, ``Lapicque``, ``RSynaptic``, ``SLSTM``/``SConv2dLSTM`` and every other neuron class (the error says
what converts instead: for a ``Lapicque`` with the ``subtract`` or ``none`` reset, the ``Leaky`` β and the factor
for the weights before it that give its spikes, ``mem = (1 − dt/(R·C))·mem + (dt/C)·x``); per-neuron
``beta`` or ``threshold`` with different values, or learnable per-neuron ones;
``state_quant``; graded spikes (``graded_spikes_factor != 1`` or learnable); ``inhibition``; ``reset_delay=False``
with the ``subtract`` reset (with ``zero`` or ``none`` it converts to the ``immediate`` timing); ``output=True``
before the last layer; ``surrogate_disable`` and other surrogates (``triangular``, ``spike_rate_escape``, ``SSO``,
custom: snnTorch's own spike as ``atan`` does, so setting the layer's ``spike_grad`` to a supported one before
converting keeps its forward pass); ``MaxPool2d(return_indices=True)``; other ``Flatten`` dims; BatchNorm with
``track_running_stats=False`` (it normalises each step by that step's batch even in eval mode; neurosim's
normalises all steps together); any other module. For ``RLeaky`` also: the
convolutional recurrence (``conv2d_channels``, ``kernel_size``: RLIF feeds back over ``[T, B, N]`` features);
``reset_mechanism="zero"`` with ``reset_delay=True`` (RLeaky's zero reset discards the whole step after a
spike, input and feedback too, ``mem[t] = (1 − spk[t−1])·(β·mem[t−1] + x[t] + V·spk[t−1])``, where ``Leaky``
and neurosim's delayed zero reset keep ``x[t]``); one ``V`` for all neurons with no ``nn.Linear`` before it
(through BatchNorm1d, Dropout and neurons) to give ``N``; ``V`` of another shape than one value or ``(N,)``.
For ``Synaptic`` also: ``learn_alpha=True`` (CubaLIF's α is a fixed buffer: neurosim does not learn the current's
decay, and learning it as snnTorch does — α itself, clamped — would give the gradient in α another meaning than
the one ``learn_beta``'s sigmoid gives β; the rest of the layer converts once ``learn_alpha=False``); per-neuron
``alpha`` with different values; ``reset_mechanism="zero"`` with ``reset_delay=True`` (Synaptic's zero reset
discards the membrane's whole next step, current included, ``mem[t] = (1 − spk[t−1])·(β·mem[t−1] + syn[t])``,
as RLeaky's does); ``reset_delay=False`` with the ``zero`` reset under snnTorch before 1.0, whose ``Synaptic``
does not apply it.

Differences to know about (forward results are identical in eval mode and without these layers):

* ``Dropout``: snnTorch (plain torch) draws a new mask every step; neurosim keeps one mask for all steps.
* ``BatchNorm`` in training mode: snnTorch normalises each step by its own batch statistics; neurosim's
  time-distributed BatchNorm does that under SLTT (one step at a time) but over time and batch together
  under BPTT.
* Learnable ``beta``: snnTorch learns β directly (clamped); neurosim learns ``β = sigmoid(w)``, so the same
  forward pass but a different gradient with respect to β. A sigmoid never reaches 1: a learnable β = 1
  becomes 1 − 1e-6 (fixed β = 1 converts exactly).
* ``reset_delay=False`` (``zero`` or ``none`` reset; converted to the immediate timing with a strict
  threshold): the recorded membrane ``state.v_seq`` (``record_membrane``) is the membrane *before* the reset at
  every step, snnTorch's ``mem`` the membrane after it. With the ``zero`` reset snnTorch's ``mem`` is
  ``v_seq * (1 - spikes)`` (0 at every spike step); with ``none`` the two are the same. Spikes equal snnTorch's
  and the final state ``v`` is its last ``mem``, bit for bit with ``backend="reference"``; the default backend's
  fused scan computes ``β·v + x`` with one rounding where snnTorch rounds twice, so there membranes agree to
  rounding (a spike can differ only where the membrane lies within a rounding of the threshold). Gradients agree
  to rounding with either backend (the surrogate is taken at the strict threshold, one float above snnTorch's).
* The converted model keeps the snnTorch model's dtype (e.g. float64). (snnTorch 1.0's ``RLeaky`` itself fails
  in float64: its float32 spikes meet the float64 recurrent ``Linear``.)
* ``RLeaky`` membranes agree to float rounding, not bit for bit, with either backend: snnTorch sums
  ``(β·mem + x) + V(spk)``, RLIF ``β·v + (x + V(spk))``. Spikes equal snnTorch's except where a membrane lies
  within a rounding of the threshold; BPTT gradients (recurrent weights included) agree to rounding. The
  recorded membrane follows the ``Leaky`` rules above (with ``reset_delay=False``, before the reset).
* ``RLeaky`` with one ``V`` for all neurons: the converted weight stays one value through training, so writing
  per-neuron values into it (``recurrent.weight.copy_``, ``functional_call`` with a ``[N]`` weight, as RRAM
  mapping does with one cell pair per neuron) raises an error. To give every neuron its own weight, run
  ``torch.nn.utils.parametrize.remove_parametrizations(net[i].recurrent, "weight")`` (same spikes); then only an
  snnTorch model with a per-neuron ``V`` can take the trained values back.
* Under SLTT the fed-back spikes are constants, as the membrane is (:mod:`neurosim.nn.recurrent`): the
  recurrent weights are trained through each step's own use of ``spk[t−1]``, not back through time.
* ``Synaptic``: spikes equal snnTorch's; currents and membranes are bit for bit snnTorch's given the same input
  tensors (membranes to rounding with ``reset_delay=False`` on the default backend, as for ``Leaky``), and to
  rounding through a ``Linear`` (over ``[T·B, ...]`` at once, snnTorch's over ``[B, ...]`` per step). BPTT
  gradients agree to rounding. Under SLTT both the current and the membrane enter each step as constants.
  snnTorch before 1.0 called with explicit states (``spk, syn, mem = lif(x, syn, mem)``) takes ``mem`` as its
  current (``self.syn = mem``, fixed in 1.0): the converted model computes the equations above, as snnTorch 0.9
  does with ``init_hidden=True``.

The converted model owns copies of every value: train it, then :func:`copy_to_snntorch` writes the trained
weights, β and thresholds back into the snnTorch model, each ``Synaptic``'s α, and each ``RLeaky``'s recurrent
``Linear`` or ``V`` (in place, so the RLeaky and its ``recurrent`` module keep sharing one ``V``).

Example:
    >>> import torch, snntorch as snn
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(8, 4), snn.Leaky(beta=0.9, init_hidden=True))
    >>> ns = from_snntorch(net)
    >>> spikes, state = ns(torch.rand(5, 3, 2, 4))       # [T, B, ...] in, [T, B, 4] out
    >>> spikes.shape
    torch.Size([5, 3, 4])
    >>> rec = nn.Sequential(nn.Linear(8, 4), snn.RLeaky(beta=0.9, linear_features=4, init_hidden=True))
    >>> from_snntorch(rec)[1]                            # the recurrent Linear's weight and bias copied
    RLIF(
      features=4, connectivity='dense'
      (lif): LIF(...)
      (recurrent): Linear(in_features=4, out_features=4, bias=True)
    )
    >>> cuba = nn.Sequential(nn.Linear(8, 4), snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True))
    >>> from_snntorch(cuba)[1]                           # the current's decay α, then the same LIF
    CubaLIF(
      alpha=0.8
      (syn): LI(beta=0.8)
      (lif): LIF(beta=0.9, v_th=1, reset='subtract', timing='delayed', surrogate=atan(alpha=2))
    )
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from neurosim import nn as nsn
from neurosim.functional.lif import strict_threshold

__all__ = ["UnsupportedSnnTorchError", "copy_to_snntorch", "from_snntorch"]

# snnTorch surrogate factory → (neurosim surrogate name, name of its sharpness argument in snnTorch)
_SURROGATES = {"atan": ("atan", "alpha"), "fast_sigmoid": ("fast_sigmoid", "slope"), "sigmoid": ("sigmoid", "slope")}


class UnsupportedSnnTorchError(ValueError):
    """The snnTorch model uses layers or options neurosim cannot reproduce exactly. ``problems`` lists them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"cannot convert this snnTorch model ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            f"{lines}\nSupported: snntorch.Leaky (one beta/threshold per layer, subtract|zero|none reset, atan|"
            "fast_sigmoid|sigmoid surrogate), snntorch.RLeaky (the same options; linear_features or "
            "all_to_all=False; not the zero reset with reset_delay=True), snntorch.Synaptic (the same options, "
            "one fixed alpha; not the zero reset with reset_delay=True), nn.Conv2d, nn.Linear, nn.MaxPool2d, "
            "nn.AvgPool2d, nn.Flatten(), "
            "nn.BatchNorm1d/2d, nn.Dropout, nn.Identity (see neurosim.interop.snntorch)"
        )


def _flatten_layers(model) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        items = list(model)  # every place, a module used twice included (children() lists it once)
    elif isinstance(model, Iterable) and not isinstance(model, nn.Module):
        items = list(model)
    else:
        names = [n for n, _ in model.named_children()] if isinstance(model, nn.Module) else []
        listed = (f"; if its forward() runs its layers one after another, pass them in that order, e.g. "
                  f"from_snntorch([{', '.join(f'model.{n}' for n in names)}]) (in the order they were registered; "
                  "copy_to_snntorch takes the same list)") if names else ""
        raise TypeError(
            f"from_snntorch needs an nn.Sequential or a list of layers in execution order, got "
            f"{type(model).__name__}; a model with a hand-written forward() cannot be read reliably{listed}; or "
            "rebuild it as nn.Sequential(..., snn.Leaky(beta, init_hidden=True), ...) (recurrent layers: "
            "snn.RLeaky(beta, linear_features=N, init_hidden=True))"
        )
    layers = []
    for m in items:
        if not isinstance(m, nn.Module):
            raise TypeError(f"from_snntorch: every layer must be an nn.Module, got {type(m).__name__}")
        layers.extend(_flatten_layers(m) if isinstance(m, nn.Sequential) else [m])
    return layers


def _scalar(value, what: str, problems: list[str], where: str) -> float | None:
    """The one value of a scalar, or of a fixed per-neuron tensor whose values are all equal (snnTorch's NIR export
    needs β and the threshold as such tensors of the layer's shape)."""
    t = torch.as_tensor(value).detach()
    if t.numel() == 1:
        return float(t)
    if t.numel() == 0:
        problems.append(f"{where}: empty {what} of shape {tuple(t.shape)}")
        return None
    if _learnable(value):
        problems.append(f"{where}: learnable per-neuron {what} of shape {tuple(t.shape)} (neurosim learns one {what} "
                        f"per layer; make it a scalar)")
        return None
    lo, hi = float(t.min()), float(t.max())
    if lo != hi:
        problems.append(f"{where}: per-neuron {what} of shape {tuple(t.shape)} with different values (from {lo:g} to "
                        f"{hi:g}; neurosim has one {what} per layer: give the layer one, e.g. their mean "
                        f"{float(t.double().mean()):.6g}, which changes its spikes, then fine-tune the converted "
                        "model)")
        return None
    return lo


def _learnable(value) -> bool:
    """A parameter that training changes: ``learn_beta``/``learn_threshold``/``learn_alpha``'s ``nn.Parameter``,
    unless frozen (``requires_grad=False``), in which case it converts as a fixed value."""
    return isinstance(value, nn.Parameter) and value.requires_grad


def _surrogate(leaky, where: str, problems: list[str]) -> tuple[str, float] | None:
    if getattr(leaky, "surrogate_disable", False):
        problems.append(f"{where}: surrogate_disable=True (no surrogate gradient, so nothing to train)")
        return None
    fn = leaky.spike_grad
    qual = getattr(fn, "__qualname__", "")
    factory = qual.split(".<locals>")[0] if ".<locals>" in qual else None
    if getattr(fn, "__module__", None) == "snntorch.surrogate" and factory in _SURROGATES:
        name, arg = _SURROGATES[factory]
        alpha = inspect.getclosurevars(fn).nonlocals.get(arg)
        if isinstance(alpha, (int, float)) and alpha > 0:
            return name, float(alpha)
    shown = factory or getattr(fn, "__name__", type(fn).__name__)
    problems.append(
        f"{where}: surrogate {shown!r} (supported: snntorch.surrogate.atan(alpha), fast_sigmoid(slope), "
        "sigmoid(slope); snnTorch's surrogates all spike at mem > threshold and differ in the gradient only, so "
        "set layer.spike_grad = snntorch.surrogate.atan() (or another of these) before converting: the same "
        "forward pass)"
    )
    return None


#: snnTorch's Leaky/RLeaky state functions (chosen in ``__init__`` from ``reset_mechanism``) and the reset each runs
_STATE_FUNCTIONS = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}


def _lif_options(neuron, where: str, is_last: bool, problems: list[str]) -> dict | None:
    """The :class:`neurosim.nn.LIF` options that reproduce a ``Leaky`` or ``RLeaky`` (the two share these), or None
    after appending every problem found."""
    n_before = len(problems)
    beta = _scalar(neuron.beta, "beta", problems, where)
    thr = _scalar(neuron.threshold, "threshold", problems, where)
    if beta is not None:
        beta = min(max(beta, 0.0), 1.0)  # snnTorch clamps β to [0, 1] every step
    if thr is not None and not thr > 0:
        problems.append(f"{where}: threshold {thr} (must be positive)")
    surrogate = _surrogate(neuron, where, problems)
    reset = neuron.reset_mechanism
    if reset not in ("subtract", "zero", "none"):
        problems.append(f"{where}: reset_mechanism {reset!r} (supported: subtract, zero, none)")
    runs = _STATE_FUNCTIONS.get(getattr(getattr(neuron, "state_function", None), "__name__", None))
    if runs is not None and runs != reset:  # snnTorch picks the reset at construction; setting it later does nothing
        problems.append(f"{where}: reset_mechanism says {reset!r} but this {type(neuron).__name__} runs the {runs!r} "
                        f"reset (snnTorch chooses it when the layer is built; pass reset_mechanism to "
                        f"snntorch.{type(neuron).__name__}(...) instead of setting it afterwards)")
    if neuron.state_quant:
        problems.append(f"{where}: state_quant (a quantised membrane, which neurosim's float LIF does not model; "
                        "build the layer with state_quant=False to convert it, its membrane unquantised)")
    if neuron.inhibition:
        problems.append(f"{where}: inhibition=True (only the neuron with the largest membrane may spike, which "
                        "neurosim's LIF does not do; build the layer with inhibition=False to convert it)")
    gsf = neuron.graded_spikes_factor
    if _learnable(gsf) or torch.as_tensor(gsf).numel() != 1 or float(torch.as_tensor(gsf)) != 1.0:
        problems.append(f"{where}: graded spikes (graded_spikes_factor must be 1 and fixed)")
    immediate = not getattr(neuron, "reset_delay", True)
    if immediate and reset == "subtract":
        problems.append(f"{where}: reset_delay=False with reset_mechanism='subtract' (snnTorch then undoes its own "
                        "delayed subtraction whenever the membrane was above twice the threshold; reset_delay=False "
                        "converts with the 'zero' or 'none' reset)")
    if neuron.output and not is_last:
        problems.append(f"{where}: output=True before the last layer (the next layer would get a (spk, mem) tuple)")
    if len(problems) > n_before:
        return None
    if immediate:  # reset in the step that spiked, as neurosim's immediate timing; snnTorch spikes at v > v_th strictly
        thr = strict_threshold(thr, torch.float64 if torch.as_tensor(neuron.threshold).dtype == torch.float64
                               else torch.float32)
    return dict(beta=beta, v_th=thr, reset=reset, surrogate=surrogate[0], surrogate_alpha=surrogate[1],
                learn_beta=_learnable(neuron.beta), learn_threshold=_learnable(neuron.threshold),
                reset_timing="immediate" if immediate else "delayed")


def _keep_float64(lif: nsn.LIF, neuron, options: dict) -> None:
    """A float64 neuron: β and the threshold in float64 as given (LIF builds them in float32, and the strict
    threshold rounded to float32 could fall back onto the threshold itself)."""
    if torch.float64 not in (torch.as_tensor(neuron.beta).dtype, torch.as_tensor(neuron.threshold).dtype):
        return
    lif.double()
    with torch.no_grad():
        if lif.learn_beta:
            b = min(max(options["beta"], 1e-6), 1 - 1e-6)  # as LIF clamps it: sigmoid reaches neither 0 nor 1
            lif.beta_logit.fill_(math.log(b / (1 - b)))
        else:
            lif.beta_value.fill_(options["beta"])
        (lif.v_th_param if lif.learn_threshold else lif.v_th_value).fill_(options["v_th"])


def _convert_leaky(leaky, where: str, is_last: bool, backend: str, problems: list[str]) -> nsn.LIF | None:
    options = _lif_options(leaky, where, is_last, problems)
    if options is None:
        return None
    lif = nsn.LIF(**options, backend=backend)
    _keep_float64(lif, leaky, options)
    return lif


def _snntorch_before_1() -> bool:
    import snntorch

    return int(str(snntorch.__version__).split(".")[0]) < 1


def _convert_synaptic(synaptic, where: str, is_last: bool, backend: str,
                      problems: list[str]) -> nsn.CubaLIF | None:
    """A ``Synaptic`` as :class:`neurosim.nn.CubaLIF` on the delayed timing: ``syn[t] = α·syn[t−1] + x[t]`` is the
    ``.syn`` child's leaky integration, ``mem[t] = β·mem[t−1] + syn[t] − reset`` the ``.lif`` child's (snnTorch
    clamps α and β to [0, 1] every step; the converted values are clamped once)."""
    n_before = len(problems)
    options = _lif_options(synaptic, where, is_last, problems)
    alpha = None
    if _learnable(synaptic.alpha):
        problems.append(f"{where}: learn_alpha=True (CubaLIF keeps the current's decay α fixed, a buffer; build the "
                        "Synaptic with learn_alpha=False to convert it with its α, learned β and threshold allowed)")
    else:
        alpha = _scalar(synaptic.alpha, "alpha", problems, where)
    reset = synaptic.reset_mechanism
    delayed = getattr(synaptic, "reset_delay", True)
    if reset == "zero" and delayed:
        problems.append(f"{where}: reset_mechanism='zero' with reset_delay=True (Synaptic's zero reset discards the "
                        "whole next step of the membrane, its current too: mem[t] = (1 - spk[t-1])·(β·mem[t-1] + "
                        "syn[t]), where Leaky and neurosim's delayed zero reset keep the input; use reset_delay=False, "
                        "'subtract' or 'none')")
    elif reset == "zero" and _snntorch_before_1():
        import snntorch

        problems.append(f"{where}: reset_delay=False with reset_mechanism='zero' in snnTorch "
                        f"{snntorch.__version__}, whose Synaptic does not apply that reset (it resets a local "
                        "variable it then drops, so it runs the delayed zero reset above, or fails with "
                        "init_hidden=True; fixed in snnTorch 1.0): upgrade snnTorch, or use 'subtract' or 'none'")
    if len(problems) > n_before:
        return None
    cuba = nsn.CubaLIF(alpha=min(max(alpha, 0.0), 1.0), **options, backend=backend)
    _keep_float64(cuba.lif, synaptic, options)
    if torch.as_tensor(synaptic.alpha).dtype == torch.float64:  # α as given, not through float32
        cuba.syn.double()
        with torch.no_grad():
            cuba.syn.beta_value.fill_(min(max(alpha, 0.0), 1.0))
    return cuba


class _SharedValue(nn.Module):
    """Parametrization of a one-to-one recurrent weight ``[N]`` by one value shared by every neuron, as snnTorch's
    ``RLeaky(all_to_all=False, V=v)`` with a single ``V`` learns it: the gradient reaching that value is the sum over
    the neurons, and training keeps the neurons equal (so the value can go back into snnTorch's single ``V``)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = features

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value.expand(self.features)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.shape != (self.features,) or bool((weight != weight[0]).any()):
            raise ValueError(f"this recurrent weight is one value shared by all {self.features} neurons (snnTorch's "
                             f"single V); assign a tensor of shape ({self.features},) whose values are all equal")
        return weight[:1].clone()


def _features_before(layers: list[nn.Module], index: int) -> int | None:
    """The feature count reaching ``layers[index]``: the ``out_features`` of the nearest ``nn.Linear`` before it,
    through layers that keep the shape (BatchNorm1d, Dropout, other neurons); None when another layer comes first."""
    import snntorch

    for m in reversed(layers[:index]):
        if type(m) is nn.Linear:
            return m.out_features
        if not (isinstance(m, (snntorch.SpikingNeuron, nn.Dropout)) or type(m) is nn.BatchNorm1d):
            return None
    return None


def _convert_rleaky(rleaky, where: str, is_last: bool, backend: str, problems: list[str],
                    layers: list[nn.Module], index: int) -> nsn.RLIF | None:
    n_before = len(problems)
    options = _lif_options(rleaky, where, is_last, problems)
    if rleaky.reset_mechanism == "zero" and getattr(rleaky, "reset_delay", True):
        problems.append(f"{where}: reset_mechanism='zero' with reset_delay=True (RLeaky zeroes the whole next step, "
                        "its input and feedback too: mem[t] = (1 - spk[t-1])·(β·mem[t-1] + x[t] + V·spk[t-1]), "
                        "where Leaky and neurosim's delayed zero reset keep the input; use reset_delay=False, "
                        "'subtract' or 'none')")
    rec = rleaky.recurrent  # decide by what forward() calls, not by all_to_all (which could be changed afterwards)
    features = shared = None
    if type(rec) is nn.Conv2d:
        problems.append(f"{where}: convolutional recurrence (conv2d_channels={rleaky.conv2d_channels}, kernel_size="
                        f"{rleaky.kernel_size}; RLIF feeds back over [T, B, N] features, densely or one-to-one: use "
                        "linear_features or all_to_all=False after a Flatten)")
    elif type(rec) is nn.Linear:
        if rec.in_features != rec.out_features:
            problems.append(f"{where}: recurrent Linear({rec.in_features}, {rec.out_features}) is not square")
        features = rec.out_features
    elif type(rec).__name__ == "RecurrentOneToOne":
        v = torch.as_tensor(rec.V)
        if v.numel() == 1:
            shared = True
            features = _features_before(layers, index)
            if features is None:
                problems.append(f"{where}: all_to_all=False with one V for every neuron, and no nn.Linear before it "
                                "to tell how many neurons there are (give V one value per neuron, "
                                "V=torch.full((N,), v), or put the layer after an nn.Linear)")
        elif v.dim() == 1 or (v.dim() == 2 and v.shape[0] == 1):
            shared, features = False, v.shape[-1]
        else:
            problems.append(f"{where}: V of shape {tuple(v.shape)} (one value, or one per neuron of shape (N,))")
    else:
        problems.append(f"{where}: recurrent connection {type(rec).__name__} (supported: the nn.Linear of "
                        "linear_features, or all_to_all=False's one-to-one V)")
    if len(problems) > n_before:
        return None
    dense = type(rec) is nn.Linear
    rlif = nsn.RLIF(features, connectivity="dense" if dense else "diagonal", bias=dense and rec.bias is not None,
                    **options, backend=backend)
    _keep_float64(rlif.lif, rleaky, options)
    target = rlif.recurrent
    with torch.no_grad():
        # copied in the layer's dtype: the whole net takes the snnTorch model's dtype at the end where every
        # tensor of it has one (a float64 model), else float32 (a float64 V in a float32 model included)
        if dense:
            target.weight.copy_(rec.weight)
            target.weight.requires_grad_(rec.weight.requires_grad)  # learn_recurrent=False: fixed, as in snnTorch
            if rec.bias is not None:
                target.bias.copy_(rec.bias)
                target.bias.requires_grad_(rec.bias.requires_grad)
        else:
            v = torch.as_tensor(rec.V).detach()
            target.weight.copy_(v.reshape(-1).expand(features))
            if shared:  # one value, as snnTorch's: the parameter is recurrent.parametrizations.weight.original
                parametrize.register_parametrization(target, "weight", _SharedValue(features))
            learn = isinstance(rec.V, nn.Parameter) and rec.V.requires_grad
            for p in target.parameters():
                p.requires_grad_(learn)
    return rlif


def _shared_problem(m: nn.Module) -> str | None:
    """Why a module at two places of the model cannot convert as two copies, or None where it can (no parameters
    and no state of its own: pooling, Flatten, Dropout, a fixed neuron whose states the caller passes)."""
    import snntorch

    if isinstance(m, snntorch.SpikingNeuron) and m.init_hidden:
        return "an init_hidden neuron: snnTorch carries one membrane from one place to the other"
    if any(True for _ in m.parameters()):
        return "its parameters are shared, tied in training"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "one set of running statistics for both places"
    return None


def _other_neuron_hint(m: nn.Module) -> str:
    """What to do with a neuron class that does not convert: the class that converts in its place, where one does."""
    name = type(m).__name__
    only = "only snntorch.Leaky, snntorch.RLeaky and snntorch.Synaptic convert"
    if name == "Lapicque":
        # mem[t] = (1 − dt/(R·C))·mem[t−1] + (dt/C)·x[t] − reset: a Leaky whose input is scaled by dt/C
        if m.reset_mechanism == "zero":
            return (f"{only}; Lapicque's zero reset discards the whole step after a spike, input included, which "
                    "neither Leaky nor neurosim does: with 'subtract' or 'none' it would convert as a Leaky")
        values = [torch.as_tensor(v).detach() for v in (m.time_step, m.R, m.C, m.threshold)]
        if any(v.numel() != 1 for v in values):
            return (f"{only}; Lapicque is mem = (1 - dt/(R·C))·mem + (dt/C)·x: with one R, C and threshold per "
                    "layer that is an snn.Leaky(beta=1 - dt/(R·C)) on inputs scaled by dt/C")
        dt, r, c, thr = (float(v) for v in values)
        decay, gain = 1 - dt / (r * c), dt / c
        if not 0 <= decay <= 1:
            return f"{only}; its decay 1 - dt/(R·C) = {decay:.6g} is outside [0, 1], which a Leaky cannot have"
        return (f"{only}; Lapicque is mem = (1 - dt/(R·C))·mem + (dt/C)·x, so replace it with "
                f"snn.Leaky(beta={decay:.6g}, threshold={thr:.6g}, reset_mechanism='{m.reset_mechanism}', the same "
                f"spike_grad) and multiply the weights and bias of the layer before it by dt/C = {gain:.6g}: the "
                "same spikes")
    if name == "Alpha":
        return (f"{only}; neurosim has no alpha-shaped synaptic current (two exponentials): snn.Synaptic, one "
                "decaying current, converts to CubaLIF; retrain with it")
    if name == "RSynaptic":
        return (f"{only}; neurosim has no recurrent current-based layer: use snn.RLeaky (recurrent) or "
                "snn.Synaptic (current-based)")
    return f"{only}; neurosim has no equivalent of {name}"


def _copy_state(src: nn.Module, dst: nn.Module) -> nn.Module:
    dst.load_state_dict(src.state_dict())
    frozen = {name for name, p in src.named_parameters() if not p.requires_grad}
    for name, p in dst.named_parameters():  # a layer frozen in snnTorch stays frozen
        p.requires_grad_(name not in frozen)
    return dst.to(next(iter(src.state_dict().values()), torch.empty(0)).device)


def _convert_layer(m: nn.Module, where: str, problems: list[str]) -> nn.Module | None:
    if type(m) is nn.Conv2d:
        new = nsn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                         m.bias is not None, m.padding_mode)
        return _copy_state(m, new)
    if type(m) is nn.Linear:
        return _copy_state(m, nsn.Linear(m.in_features, m.out_features, m.bias is not None))
    if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
        if not m.track_running_stats:
            problems.append(f"{where}: track_running_stats=False (with no running statistics it normalises each step "
                            "by that step's batch in eval mode too, where neurosim's time-distributed BatchNorm "
                            "normalises all steps of the batch together: other outputs; build it with "
                            "track_running_stats=True, the default, and train it so)")
            return None
        cls = nsn.BatchNorm1d if type(m) is nn.BatchNorm1d else nsn.BatchNorm2d
        return _copy_state(m, cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats))
    if type(m) is nn.MaxPool2d:
        if m.return_indices:
            problems.append(f"{where}: MaxPool2d(return_indices=True)")
            return None
        return nsn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if type(m) is nn.AvgPool2d:
        return nsn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                             m.divisor_override)
    if type(m) is nn.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            problems.append(f"{where}: Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) (only the default "
                            "Flatten(1, -1) is supported)")
            return None
        return nsn.Flatten()
    if type(m) is nn.Dropout:
        return nsn.Dropout(m.p)
    problems.append(f"{where}: unsupported layer {type(m).__name__}")
    return None


def from_snntorch(model, *, backend: str = "auto") -> nsn.Sequential:
    """Convert an snnTorch model to a neurosim :class:`~neurosim.nn.Sequential` that computes the same thing.

    Args:
        model: an ``nn.Sequential`` (or a list of layers in execution order) of ``torch.nn`` layers and
            ``snntorch.Leaky``/``snntorch.RLeaky``/``snntorch.Synaptic`` neurons; ``init_hidden=True`` or not.
        backend: LIF backend for the converted neurons (``auto`` | ``reference``).

    Returns:
        A neurosim ``Sequential``: ``net(x_seq [T, B, ...], state=None) -> (spikes [T, B, ...], state)``, in the
        same train/eval mode as ``model`` (and each layer in its layer's), with copies of its parameters and buffers.

    Raises:
        UnsupportedSnnTorchError: listing every unsupported layer or option (see the module docstring).
        TypeError: ``model`` is not a sequence of layers.
    """
    import snntorch

    layers = _flatten_layers(model)
    layers = [m for m in layers if type(m) is not nn.Identity]
    if not layers:
        raise ValueError("from_snntorch: the model has no layers")
    problems: list[str] = []
    converted: list[nn.Module] = []
    first_place: dict[int, int] = {}
    for i, m in enumerate(layers):
        where = f"layer {i} ({type(m).__name__})"
        j = first_place.setdefault(id(m), i)
        shared = _shared_problem(m) if j != i else None
        if shared is not None:
            problems.append(f"{where}: the same module as layer {j} ({shared}, which the converted "
                            "model, one copy per place, cannot keep; give each place its own module, "
                            "copy.deepcopy(layer), to convert them apart)")
        elif isinstance(m, snntorch.SpikingNeuron):
            is_last = i == len(layers) - 1
            if type(m) is snntorch.Leaky:
                new = _convert_leaky(m, where, is_last, backend, problems)
            elif type(m) is snntorch.RLeaky:
                new = _convert_rleaky(m, where, is_last, backend, problems, layers, i)
            elif type(m) is snntorch.Synaptic:
                new = _convert_synaptic(m, where, is_last, backend, problems)
            else:
                new = None
                problems.append(f"{where}: neuron {type(m).__name__} ({_other_neuron_hint(m)})")
            if new is not None:
                new.to(m.threshold.device)
        else:
            new = _convert_layer(m, where, problems)
        if new is not None:
            converted.append(new)
    if problems:
        raise UnsupportedSnnTorchError(problems)
    net = nsn.Sequential(*converted)
    dtypes = {t.dtype for m in layers for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()}
    if len(dtypes) == 1 and dtypes != {torch.float32}:  # e.g. a float64 model: its copies keep that precision
        net.to(dtypes.pop())
    net.train(model.training if isinstance(model, nn.Module) else all(m.training for m in layers))
    for src, new in zip(layers, converted):  # a layer held in eval mode (a frozen BatchNorm) stays so
        new.train(src.training)
    return net


def copy_to_snntorch(neurosim_model: nsn.Sequential, snntorch_model) -> None:
    """Write a converted model's (trained) values back into the snnTorch model it came from.

    Copies weights, biases, BatchNorm parameters and statistics, every ``Leaky``'s, ``RLeaky``'s and
    ``Synaptic``'s β and threshold (into its buffer, or its parameter when learnable; a ``reset_delay=False`` layer,
    converted with the next float above its threshold, gets the float below the converted one: its own threshold
    back, and the same spikes), every ``Synaptic``'s α, and every ``RLeaky``'s recurrent weights.
    ``snntorch_model`` must have the structure that :func:`from_snntorch` converted.
    """
    import snntorch

    src = list(neurosim_model.children())
    dst = [m for m in _flatten_layers(snntorch_model) if type(m) is not nn.Identity]
    if len(src) != len(dst):
        raise ValueError(f"the neurosim model has {len(src)} layers but the snnTorch model has {len(dst)}; "
                         "pass the model that from_snntorch converted")
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(src, dst)):
            if isinstance(b, snntorch.SpikingNeuron):
                expected = (nsn.RLIF if isinstance(b, snntorch.RLeaky) else
                            nsn.CubaLIF if isinstance(b, snntorch.Synaptic) else nsn.LIF)
                if not isinstance(a, expected):
                    raise ValueError(f"layer {i}: {type(b).__name__} in snnTorch but {type(a).__name__} in neurosim")
                lif = a if expected is nsn.LIF else a.lif
                if expected is nsn.CubaLIF:
                    b.alpha.copy_(a.alpha.detach().reshape(()).expand(b.alpha.shape))
                b.beta.copy_(lif.beta.detach().reshape(()).expand(b.beta.shape))  # one value, or every neuron's
                v_th = lif.v_th.detach().reshape(())
                if lif.reset_timing == "immediate":  # from reset_delay=False: neurosim's v >= v_th is snnTorch's
                    v_th = torch.nextafter(v_th, v_th.new_tensor(-math.inf))  # v > (the float below v_th)
                b.threshold.copy_(v_th.expand(b.threshold.shape))
                if expected is nsn.RLIF:
                    _copy_recurrent(a.recurrent, b.recurrent, f"layer {i}")
            elif list(b.state_dict()):
                b.load_state_dict(a.state_dict())


def _copy_recurrent(a: nn.Module, b: nn.Module, where: str) -> None:
    """An RLIF's recurrent weights into its RLeaky's: the Linear's weight and bias, or the one-to-one ``V`` (in place:
    the RLeaky and its ``recurrent`` module hold the same ``V`` tensor)."""
    if type(b) is nn.Linear:
        if not isinstance(a, nn.Linear) or a.weight.shape != b.weight.shape:
            raise ValueError(f"{where}: the RLeaky's recurrent Linear{tuple(b.weight.shape)} has no match in "
                             f"neurosim's {type(a).__name__}; pass the model that from_snntorch converted")
        b.weight.copy_(a.weight)
        if b.bias is not None:
            b.bias.copy_(a.bias)
        return
    weight = a.weight.detach()
    v = b.V
    if v.numel() == 1:
        if bool((weight != weight[0]).any()):
            raise ValueError(f"{where}: the RLeaky has one V for every neuron but neurosim's one-to-one weights differ "
                             f"(from {float(weight.min()):g} to {float(weight.max()):g}); give the snnTorch layer one "
                             "V per neuron (V=torch.full((N,), v)) to take them")
        v.copy_(weight[0].reshape(v.shape))
    else:
        v.copy_(weight.reshape(v.shape))
