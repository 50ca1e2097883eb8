"""neurosim.hardware: what a trained model does on real devices (torch side of the hardware models).

:mod:`neurosim.hardware.nonideal` maps Linear/Conv2d weights (and recurrent layers' feedback weights) onto RRAM
crossbar conductances and applies the device non-idealities (quantisation to conductance levels, programming
variation, stuck-at faults, drift, read noise, ADC quantisation) as seeded Monte-Carlo chips; :func:`evaluate_nonideal` gives the accuracy over chips and
:func:`noise_aware_finetune` trains with the same noise. :mod:`neurosim.hardware.report` takes the non-idealities
from a crossbar target's spec and reports accuracy over chips with σ / fault-rate sweeps (``neurosim estimate
--nonideal``, flags in :mod:`neurosim.hardware.cli_support`); :mod:`neurosim.hardware.plots` draws accuracy vs σ and
fault rate, energy breakdowns and tiles used. :mod:`neurosim.hardware.fixed_point` runs a trained model in a digital
chip's integer arithmetic (Loihi as Lava's bit-accurate models, Speck as sinabs discretises it, SpiNNaker as
sPyNNaker's fixed-point LIF computes it) and compares its
accuracy with the float model's (``neurosim estimate --fixed-point``). Energy and latency live in
:mod:`hardware_models`.
"""

from neurosim.hardware.fixed_point import (
    ChipModel,
    chip_weights_model,
    evaluate_fixed_point,
    fixed_point_targets,
    format_fixed_point,
    to_chip,
)
from neurosim.hardware.nonideal import (
    CrossbarConv2d,
    CrossbarDiagonal,
    CrossbarLinear,
    NonIdealConfig,
    accuracy,
    apply_nonidealities,
    combine_slices,
    crossbar_layers,
    effective_weight,
    evaluate_nonideal,
    noise_aware_finetune,
    perturb_weight,
    program_conductances,
)
from neurosim.hardware.plots import (
    energy_groups,
    plot_accuracy_sweep,
    plot_accuracy_vs_fault_rate,
    plot_accuracy_vs_sigma,
    plot_energy_breakdown,
    plot_tiles,
    sweep_note,
)
from neurosim.hardware.report import (
    chip_accuracies,
    format_nonideal,
    nonideal_config_from_spec,
    nonideal_report,
    nonideal_report_model,
    sweep_nonideal,
)

__all__ = [
    "ChipModel", "chip_weights_model", "evaluate_fixed_point", "fixed_point_targets", "format_fixed_point", "to_chip",
    "CrossbarConv2d", "CrossbarDiagonal", "CrossbarLinear", "NonIdealConfig", "accuracy", "apply_nonidealities",
    "combine_slices", "crossbar_layers", "effective_weight",
    "evaluate_nonideal", "noise_aware_finetune", "perturb_weight", "program_conductances",
    "chip_accuracies", "format_nonideal", "nonideal_config_from_spec", "nonideal_report", "nonideal_report_model",
    "sweep_nonideal", "energy_groups", "plot_accuracy_sweep", "plot_accuracy_vs_fault_rate", "plot_accuracy_vs_sigma",
    "plot_energy_breakdown", "plot_tiles", "sweep_note",
]
