"""Pure tensor maths for spiking neurons: LIF scan and surrogate spike functions (no modules, no state)."""

from neurosim.functional.lif import (
    RESET_TIMINGS,
    RESETS,
    LIFParams,
    LIFState,
    beta_from_tau,
    is_temporal_grad_enabled,
    lif_scan,
    no_temporal_grad,
    tau_from_beta,
)
from neurosim.functional.surrogate import SURROGATES, Surrogate, heaviside, spike

__all__ = [
    "RESETS", "RESET_TIMINGS", "SURROGATES", "LIFParams", "LIFState", "Surrogate",
    "beta_from_tau", "heaviside", "is_temporal_grad_enabled", "lif_scan", "no_temporal_grad", "spike",
    "tau_from_beta",
]
