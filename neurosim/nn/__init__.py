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
    detach_state,
    is_stateful,
    run_chunked,
    time_chunk,
)
from neurosim.nn.lif import LIF
from neurosim.nn.models import build_model, conv_snn, mlp_snn

__all__ = [
    "LI", "LIF", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Linear",
    "MaxPool2d", "Sequential", "SumPool2d", "TimeDistributed", "build_model", "conv_snn", "detach_state",
    "is_stateful", "mlp_snn", "run_chunked", "time_chunk",
]
