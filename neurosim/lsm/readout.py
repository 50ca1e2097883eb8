r"""Trained digital readouts on reservoir features: linear, a small ANN, or a contrastive embedding.

Features are standardised with the training set's mean and standard deviation (kept in the readout). Training is
full batch with Adam (the feature matrices are small):

* ``linear``: ``logits = W f + b``, cross-entropy;
* ``mlp``: one hidden ReLU layer, cross-entropy;
* ``contrastive``: an MLP maps features to a unit-norm embedding ``z``, trained with the supervised contrastive
  loss (Khosla et al. 2020) at temperature τ,
  ``L = −Σ_i 1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ) )``;
  a sample is classified by the nearest class prototype (mean training embedding, cosine similarity) — the
  prototype/contrastive readout of the RRAM LSM paper, in its supervised form.

Example:
    >>> import torch
    >>> from neurosim.lsm.config import ReadoutConfig
    >>> f = torch.randn(60, 8); y = (f[:, 0] > 0).long()
    >>> r = train_readout(f, y, ReadoutConfig(kind="linear", epochs=100), num_classes=2)
    >>> bool((r.predict(f) == y).float().mean() > 0.9)
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.lsm.config import ReadoutConfig

__all__ = ["Readout", "supcon_loss", "train_readout"]


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss of unit-norm embeddings ``z [B, D]`` with labels ``y [B]``."""
    sim = z @ z.T / temperature
    eye = torch.eye(len(y), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    n_pos = pos.sum(1)
    keep = n_pos > 0
    per = -(log_prob.masked_fill(~pos, 0.0)).sum(1)[keep] / n_pos[keep]
    return per.mean()


class Readout(nn.Module):
    """A trained readout: ``forward(features) -> scores [B, classes]``, ``predict(features) -> [B]``."""

    def __init__(self, kind: str, net: nn.Module, mean: torch.Tensor, std: torch.Tensor,
                 prototypes: torch.Tensor | None = None) -> None:
        super().__init__()
        self.kind, self.net = kind, net
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("prototypes", prototypes)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        h = self.net((features - self.mean) / self.std)
        return F.normalize(h, dim=1) if self.kind == "contrastive" else h

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.embed(features)
        return h @ self.prototypes.T if self.kind == "contrastive" else h

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self(features).argmax(1)


def train_readout(features: torch.Tensor, labels: torch.Tensor, cfg: ReadoutConfig, num_classes: int,
                  seed: int = 0) -> Readout:
    """Train a readout of kind ``cfg.kind`` on ``features [N, F]`` and integer ``labels [N]``.

    ``seed`` alone decides the initial weights (the only random draws: training is full batch), so the same
    arguments give the same readout. The caller's random streams are left as they were: the draws come from
    torch's CPU generator seeded with ``seed`` inside :func:`torch.random.fork_rng`, which restores it afterwards.
    """
    if features.dim() != 2 or len(features) != len(labels):
        raise ValueError(f"features must be [N, F] with one label each, got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)} labels")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise ValueError(f"labels must lie in [0, num_classes) = [0, {num_classes}), got {int(labels.min())} to "
                         f"{int(labels.max())}")
    x = features.float()
    mean, std = x.mean(0), x.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))  # a feature constant in training: centred, not blown up
    d = x.shape[1]
    # nn.Linear initialises from the default CPU generator: seed it here, and give the caller's state back after
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        if cfg.kind == "linear":
            net = nn.Linear(d, num_classes)
        elif cfg.kind == "mlp":
            net = nn.Sequential(nn.Linear(d, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, num_classes))
        else:
            net = nn.Sequential(nn.Linear(d, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.embedding))
    readout = Readout(cfg.kind, net, mean, std)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xs = (x - mean) / std
    for _ in range(cfg.epochs):
        h = net(xs)
        loss = supcon_loss(F.normalize(h, dim=1), labels, cfg.temperature) if cfg.kind == "contrastive" \
            else F.cross_entropy(h, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    if cfg.kind == "contrastive":
        with torch.no_grad():
            z = F.normalize(net(xs), dim=1)
            protos = torch.stack([z[labels == c].mean(0) if (labels == c).any() else z.new_zeros(z.shape[1])
                                  for c in range(num_classes)])
        readout.prototypes = F.normalize(protos, dim=1)
    return readout
