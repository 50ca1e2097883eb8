"""Model ⇄ NIR graph (Neuromorphic Intermediate Representation): export for hardware tools, import back.

* :func:`to_nir` — a neurosim (or snnTorch) model → ``nir.NIRGraph``; :func:`from_nir` — back to a runnable
  neurosim model; :func:`write_nir` / :func:`read_nir` — ``.nir`` files (atomic write).
* :func:`tau_r_from_beta` / :func:`beta_gain_from_tau_r` — the one place where ``dt`` and ``τ`` are converted.

See :mod:`neurosim.export.nir` for the conventions and what NIR cannot express.
"""

from neurosim.export.nir import (
    MAXPOOL_MODES,
    NIRExportError,
    NIRImportError,
    beta_gain_from_tau_r,
    from_nir,
    read_nir,
    tau_r_from_beta,
    to_nir,
    write_nir,
)

__all__ = [
    "MAXPOOL_MODES", "NIRExportError", "NIRImportError", "beta_gain_from_tau_r", "from_nir", "read_nir",
    "tau_r_from_beta", "to_nir", "write_nir",
]
