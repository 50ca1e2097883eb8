r"""A trained model run in a digital chip's number formats: integer weights, thresholds, decays and membranes,
simulated step by step as the chip computes them, and the test accuracy that results.

The energy estimates (:mod:`hardware_models`) assume the chip computes what the float model does. It does not:
weights are a few bits, decays 12-bit fractions, membranes saturate, and some neurons cannot leak or reset the
way the model does. :func:`to_chip` builds the integer model of one digital target; :func:`evaluate_fixed_point`
compares its test accuracy with the float model's and with the float model holding the chip's weights
(:func:`chip_weights_model`); :func:`chip_activity` records the chip's own spikes, which
:func:`neurosim.estimation.chip_energy` prices next to the float model's; :func:`fixed_point_reports` runs both for
several targets (``neurosim estimate --fixed-point``, the demo's report).

Every chip takes the model as it would be exported: BatchNorm folded into the weights before it, dropout dropped,
an average pool run as a sum pool with its 1/k² folded into the next layer's weights, an LI layer only as the
read-out. Inputs must be whole numbers (spikes or event counts; Speck and SpiNNaker: not negative).

The arithmetic follows the target spec's ``arithmetic`` option, with the spec's ``[precision]`` constants. Each
arithmetic has its own file, which gives the chip's rules with their sources, the scales chosen for it, its
quantisation and its neurons' step:

* ``loihi`` (:mod:`neurosim.hardware.fixed_point.loihi`) — Intel Loihi's compartments and dense synapses, as
  Lava's bit-accurate process models compute them: 9-bit weight words with an exponent per matrix, a 24-bit current
  and voltage that decay by 12-bit fractions, a reset to zero;
* ``dynapcnn`` (:mod:`neurosim.hardware.fixed_point.dynapcnn`) — SynSense Speck / DYNAP-CNN cores, as sinabs maps
  a network onto them: one scale per layer to 8-bit weights and biases and a 16-bit state, integrate-and-fire
  neurons that can fire several times a step, sum pooling;
* ``spinnaker`` (:mod:`neurosim.hardware.fixed_point.spinnaker`) — SpiNNaker 1 as sPyNNaker runs
  ``IF_curr_delta`` (LIF, RLIF, a read-out LI) and ``IF_curr_exp`` (CubaLIF with α > 0) on its ARM cores: s16.15
  accums that wrap, 16-bit weights in saturating ring buffers, the decays computed on the core with spinn_common's
  exponential.

What the chips share: :mod:`neurosim.hardware.fixed_point.parts` holds the number formats (:class:`ChipFormat`,
:func:`chip_format`) and the parts of an integer model (:class:`ChipSynapse`; :class:`ChipNeuron`, the time loop
around its chip's step; :class:`ChipModel`); :mod:`neurosim.hardware.fixed_point.convert` holds :func:`to_chip`,
which walks the model's layers and has each synapse–neuron pair quantised by its chip's file;
:mod:`neurosim.hardware.fixed_point.evaluation` the accuracies, the chip's activity and the reports.

What is chosen here, not by the chip: the scale of each layer (each chip's file says how: Loihi's threshold of
``THRESHOLD_UNITS`` = 2^14 voltage units, Speck's by sinabs' rule, SpiNNaker's PyNN parameters as s16.15 words).

Not simulated: Lava's int32 overflow of a huge summed input (``a_in << 6`` past 2^31, which the hardware's
narrower input would not reach either: here it is computed exactly), Loihi's and SpiNNaker's one-step delay per
synapse layer unless asked for (``to_chip(..., delays=True)``, ``--fixed-point-delays``: a network of ``L`` layers
then answers ``L`` steps late within the ``T`` steps; by default every layer answers in the step its input arrives,
as a chip run ``L`` steps longer does; a recurrent connection's delay is always simulated), the asynchronous order of Speck's events within a time
step, input spikes above one per axon and step (counts enter as graded inputs; on SpiNNaker as that many spikes),
sPyNNaker's local-only convolutions (a convolution runs as its connection list), and where a layer does not fit a
core (the estimate's mapping reports that).

Example:
    >>> import torch
    >>> from neurosim import nn as nsn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nsn.Sequential(nsn.Linear(4, 3), nsn.LIF(beta=0.5))
    >>> chip = to_chip(model, "loihi")
    >>> spikes, _ = chip(torch.ones(5, 2, 4))
    >>> spikes.shape, chip.layers[0]["threshold_int"]
    (torch.Size([5, 2, 3]), 16384)
"""

from neurosim.hardware.fixed_point import evaluation, spinnaker
from neurosim.hardware.fixed_point.convert import to_chip
from neurosim.hardware.fixed_point.evaluation import (
    chip_activity,
    chip_weights_model,
    evaluate_fixed_point,
    fixed_point_reports,
    format_fixed_point,
)
from neurosim.hardware.fixed_point.loihi import THRESHOLD_UNITS
from neurosim.hardware.fixed_point.parts import (
    ChipFormat,
    ChipModel,
    ChipNeuron,
    ChipSynapse,
    chip_format,
    fixed_point_targets,
    formats_key,
)

# constants importable from here but not in __all__, as before the split (neurosim.runs reads ENERGY_NOTE)
ENERGY_NOTE = evaluation.ENERGY_NOTE
SPINNAKER_RANGE = spinnaker.SPINNAKER_RANGE

__all__ = ["THRESHOLD_UNITS", "ChipFormat", "ChipModel", "ChipNeuron", "ChipSynapse", "chip_activity", "chip_format",
           "chip_weights_model", "evaluate_fixed_point", "fixed_point_reports", "fixed_point_targets",
           "format_fixed_point", "formats_key", "to_chip"]
