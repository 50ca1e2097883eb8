"""A tiny synthetic spiking task and a quickly trained LIF MLP for the RRAM tests (fresh objects per call)."""

from __future__ import annotations

import torch

from neurosim.nn import LIF, Linear, Sequential


def spike_patterns(n: int, *, classes: int = 5, inputs: int = 40, T: int = 8, seed: int = 0):
    """``(x [N, T, inputs], y [N])``: each class drives its own random set of inputs at a high rate."""
    g = torch.Generator().manual_seed(1234)  # the class prototypes are fixed
    proto = torch.full((classes, inputs), 0.1)
    for c in range(classes):
        proto[c, torch.randperm(inputs, generator=g)[:8]] = 0.3  # overlapping, noisy: not every sample separable
    gs = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=gs)
    x = (torch.rand(n, T, inputs, generator=gs) < proto[y][:, None, :]).float()
    return x, y


class Batches:
    """Time-first ``(x_seq [T, B, ...], y)`` batches over ``[N, T, ...]`` samples, in order."""

    def __init__(self, x, y, batch_size: int = 64):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __iter__(self):
        for i in range(0, len(self.y), self.batch_size):
            yield self.x[i: i + self.batch_size].transpose(0, 1), self.y[i: i + self.batch_size]

    def __len__(self):
        return -(-len(self.y) // self.batch_size)


def trained_mlp(seed: int = 0, steps: int = 60, hidden: int = 24, classes: int = 5, inputs: int = 40):
    """A 40-24-5 LIF MLP trained for ``steps`` Adam steps on :func:`spike_patterns`; ``(model, test loader)``."""
    torch.manual_seed(seed)
    model = Sequential(Linear(inputs, hidden), LIF(beta=0.8), Linear(hidden, classes), LIF(beta=0.8))
    x, y = spike_patterns(512, classes=classes, inputs=inputs, seed=seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    train = Batches(x, y, 64)
    for step in range(steps):
        for xb, yb in train:
            out, _ = model(xb)
            loss = torch.nn.functional.cross_entropy(out.mean(0), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            break  # one batch per step, cycling below
        train = Batches(x.roll(64 * (step + 1), 0), y.roll(64 * (step + 1), 0), 64)
    model.eval()
    xt, yt = spike_patterns(400, classes=classes, inputs=inputs, seed=seed + 99)
    return model, Batches(xt, yt, 200)
