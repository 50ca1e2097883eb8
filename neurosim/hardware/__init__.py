"""neurosim.hardware: what a trained model does on real devices (torch side of the hardware models).

:mod:`neurosim.hardware.nonideal` maps Linear/Conv2d weights onto RRAM crossbar conductances and applies the
device non-idealities (quantisation to conductance levels, programming variation, stuck-at faults, drift, read
noise, ADC quantisation) as seeded Monte-Carlo chips; :func:`evaluate_nonideal` gives the accuracy over chips and
:func:`noise_aware_finetune` trains with the same noise. Energy and latency live in :mod:`hardware_models`.
"""

from neurosim.hardware.nonideal import (
    CrossbarConv2d,
    CrossbarLinear,
    NonIdealConfig,
    accuracy,
    apply_nonidealities,
    effective_weight,
    evaluate_nonideal,
    noise_aware_finetune,
    perturb_weight,
    program_conductances,
)

__all__ = [
    "CrossbarConv2d", "CrossbarLinear", "NonIdealConfig", "accuracy", "apply_nonidealities", "effective_weight",
    "evaluate_nonideal", "noise_aware_finetune", "perturb_weight", "program_conductances",
]
