"""Modules: LIF neurons, time-distributed layers over ``[T, B, ...]``, the stateful Sequential, builders."""

from neurosim.nn.layers import (
    LI,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    Sequential,
    SumPool2d,
    TimeDistributed,
    as_float,
    detach_state,
    is_stateful,
    run_chunked,
    time_chunk,
)
from neurosim.nn.cuba import CubaLIF, CubaLIFState
from neurosim.nn.lif import LIF
from neurosim.nn.models import build_model, conv_snn, mlp_snn
from neurosim.nn.recurrent import RLIF, DiagonalRecurrent, RLIFState

__all__ = [
    "LI", "LIF", "RLIF", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CubaLIF", "CubaLIFState", "DiagonalRecurrent", "Dropout", "Flatten", "Linear",
    "MaxPool2d", "RLIFState", "Sequential", "SumPool2d", "TimeDistributed", "build_model", "conv_snn", "detach_state",
    "as_float", "is_stateful", "mlp_snn", "run_chunked", "time_chunk",
]
