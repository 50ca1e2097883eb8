"""Model builders from :class:`neurosim.config.ModelConfig` and :class:`neurosim.config.NeuronConfig`.

* ``conv``: ``[SumPool(input_pool)] → (Conv → [BN] → LIF → [Pool])×len(channels) → Flatten →
  ([Dropout] → Linear → [BN] → LIF)×len(hidden) → [Dropout] → Linear → LIF | LI``, the pool a max pool unless
  ``pool_type`` says ``sum`` (as Speck pools) or ``avg``.
  The defaults (Conv 2→16 k5, LIF, MaxPool 2, Conv 16→32 k5, LIF, MaxPool 2, Linear 800→10, LIF) are the
  classic N-MNIST conv SNN on 2×34×34 input; ``input_pool = 4`` with ``input_shape = (2, 128, 128)`` suits
  DVS-Gesture.
* ``mlp``: ``Flatten → ([Dropout] → Linear → [BN] → LIF)×len(hidden) → [Dropout] → Linear → LIF | LI``,
  e.g. 700 → 256 → 256 → 20 for SHD audio spikes.
* ``recurrent = true`` makes every hidden layer's LIF an :class:`neurosim.nn.RLIF` (its spikes fed back through a
  dense matrix), in both kinds.
* ``neuron.tau_syn_ms`` makes every LIF layer a current-based :class:`neurosim.nn.CubaLIF`.

Example:
    >>> import torch
    >>> from neurosim.config import ModelConfig, NeuronConfig
    >>> net = build_model(ModelConfig(), NeuronConfig())
    >>> out, _ = net(torch.zeros(3, 2, 2, 34, 34))
    >>> out.shape
    torch.Size([3, 2, 10])
"""

from __future__ import annotations

import torch

from neurosim.config import ModelConfig, NeuronConfig
from neurosim.nn.layers import (
    LI, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Sequential, SumPool2d,
)
from neurosim.nn.cuba import CubaLIF
from neurosim.nn.lif import LIF
from neurosim.nn.recurrent import RLIF

__all__ = ["build_model", "conv_snn", "mlp_snn"]


def _neuron(neuron: NeuronConfig) -> LIF | CubaLIF:
    """A spiking layer's neurons: LIF, or current-based (:class:`CubaLIF`) where ``neuron.tau_syn_ms`` is set."""
    if neuron.tau_syn_ms is None:
        return LIF(**neuron.lif_kwargs())
    return CubaLIF(neuron.tau_syn_ms, **neuron.lif_kwargs())


def _head(layers: list, in_features: int, model: ModelConfig, neuron: NeuronConfig) -> None:
    if model.recurrent and neuron.tau_syn_ms is not None:  # (every builder comes here)
        raise ValueError("model.recurrent with neuron.tau_syn_ms: recurrent layers are LIF neurons (RLIF); "
                         "current-based recurrent layers (snnTorch's RSynaptic) are not available: unset one of them")
    for width in model.hidden:
        if model.dropout:
            layers.append(Dropout(model.dropout))
        layers.append(Linear(in_features, width, bias=not model.batch_norm))
        if model.batch_norm:
            layers.append(BatchNorm1d(width))
        layers.append(RLIF(width, **neuron.lif_kwargs()) if model.recurrent else _neuron(neuron))
        in_features = width
    if model.dropout:
        layers.append(Dropout(model.dropout))
    layers.append(Linear(in_features, model.num_classes))
    layers.append(_neuron(neuron) if model.readout == "spikes" else LI(model.readout_beta))


def conv_snn(model: ModelConfig, neuron: NeuronConfig) -> Sequential:
    """Convolutional SNN for event-camera frames ``[T, B, C, H, W]``."""
    c, h, w = model.input_shape
    layers: list = []
    if model.input_pool > 1:
        layers.append(SumPool2d(model.input_pool))
        h, w = h // model.input_pool, w // model.input_pool
        if h <= 0 or w <= 0:
            raise ValueError(f"model.input_pool {model.input_pool} is larger than the input "
                             f"{tuple(model.input_shape[1:])}: use a smaller input_pool")
    for out_c in model.channels:
        layers.append(Conv2d(c, out_c, model.kernel_size, padding=model.padding, bias=not model.batch_norm))
        if model.batch_norm:
            layers.append(BatchNorm2d(out_c))
        layers.append(_neuron(neuron))
        h = h + 2 * model.padding - model.kernel_size + 1
        w = w + 2 * model.padding - model.kernel_size + 1
        if model.pool > 1:
            layers.append({"max": MaxPool2d, "sum": SumPool2d, "avg": AvgPool2d}[model.pool_type](model.pool))
            h, w = h // model.pool, w // model.pool
        if h <= 0 or w <= 0:
            raise ValueError(
                f"model.input_shape {model.input_shape} is too small for {len(model.channels)} conv blocks with "
                f"kernel_size {model.kernel_size}, padding {model.padding}, pool {model.pool}"
                + (f" after input_pool {model.input_pool}" if model.input_pool > 1 else "")
                + ": use fewer channels entries, padding, or a smaller pool"
                + (" or input_pool" if model.input_pool > 1 else "")
            )
        c = out_c
    layers.append(Flatten())
    _head(layers, c * h * w, model, neuron)
    return Sequential(*layers)


def mlp_snn(model: ModelConfig, neuron: NeuronConfig) -> Sequential:
    """Fully connected SNN for flattened inputs ``[T, B, ...]`` (e.g. SHD's 700 channels)."""
    layers: list = [Flatten()]
    _head(layers, int(torch.Size(model.input_shape).numel()), model, neuron)
    return Sequential(*layers)


def build_model(model: ModelConfig, neuron: NeuronConfig) -> Sequential:
    """Build the network a config describes."""
    if model.kind == "conv":
        return conv_snn(model, neuron)
    return mlp_snn(model, neuron)
