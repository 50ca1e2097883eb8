"""neurosim.lsm: the RRAM liquid state machine (Lin et al., Nat. Comput. Sci. 2025) on event data.

A fixed random recurrent spiking reservoir whose weights come from stochastic RRAM switching
(:class:`Reservoir`), a trained digital readout (:func:`train_readout`: linear, a small ANN, or a supervised
contrastive embedding with class prototypes), the comparison with a software reservoir, and the reservoir's
energy on crossbar and digital targets (:func:`run_lsm`; CLI ``neurosim lsm --config lsm_event_digits``).
"""

from neurosim.lsm.config import (EnergyConfig, LSMConfig, LSMDataConfig, ReadoutConfig, ReservoirConfig,
                                 load_lsm_config, lsm_config_from_dict)
from neurosim.lsm.readout import Readout, supcon_loss, train_readout
from neurosim.lsm.reservoir import Reservoir, rate_features, reservoir_graph, rram_cells
from neurosim.lsm.run import LSMResult, downsample_events, load_lsm_data, reservoir_energy, run_lsm

__all__ = [
    "EnergyConfig", "LSMConfig", "LSMDataConfig", "LSMResult", "ReadoutConfig", "Readout", "Reservoir",
    "ReservoirConfig", "downsample_events", "load_lsm_config", "load_lsm_data", "lsm_config_from_dict",
    "rate_features", "reservoir_energy", "reservoir_graph", "rram_cells", "run_lsm", "supcon_loss", "train_readout",
]
