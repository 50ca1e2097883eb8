"""Seeded small networks and inputs shared by the early-exit and per-sample tests: a conv net with a max pool, and
a recurrent one with a CUBA layer and an LI read-out; and a recorder of the estimates a study makes."""

from __future__ import annotations

import torch

from neurosim.nn import LI, LIF, CubaLIF, Conv2d, Flatten, Linear, MaxPool2d, RLIF, Sequential


def conv_net(T: int, B: int):
    """``(net, x [T, B, 2, 8, 8], input_shape)``."""
    torch.manual_seed(3)
    net = Sequential(Conv2d(2, 4, 3), LIF(beta=0.8, v_th=0.5), MaxPool2d(2), Flatten(), Linear(4 * 3 * 3, 5),
                     LIF(beta=0.9, v_th=0.5))
    x = (torch.rand(T, B, 2, 8, 8) > 0.6).float()
    return net, x, (2, 8, 8)


def recurrent_net(T: int, B: int):
    """``(net, x [T, B, 12], input_shape)``."""
    torch.manual_seed(4)
    net = Sequential(Linear(12, 10), RLIF(10, beta=0.9, v_th=0.5), Linear(10, 8), CubaLIF(tau_syn_ms=3.0, v_th=0.4),
                     Linear(8, 3), LI(beta=0.9))
    x = (torch.rand(T, B, 12) > 0.5).float()
    return net, x, (12,)


def record_estimates(monkeypatch) -> list[tuple]:
    """The calls of ``hardware_models.estimate`` made while the test runs, each passed on: ``(target name,
    activity, options)``."""
    import hardware_models

    calls, real = [], hardware_models.estimate

    def recording(graph, activity, target, **options):
        calls.append((getattr(target, "name", target), activity, options))
        return real(graph, activity, target, **options)

    monkeypatch.setattr(hardware_models, "estimate", recording)
    return calls
