"""Interoperability with other SNN libraries: convert their models so neurosim can train them.

* :mod:`neurosim.interop.snntorch` — ``snntorch.Leaky`` + ``torch.nn`` models → neurosim ``Sequential``
  (identical spikes; trainable with BPTT, SLTT, SLTT-K) and back.
"""

from neurosim.interop.snntorch import UnsupportedSnnTorchError, copy_to_snntorch, from_snntorch

__all__ = ["UnsupportedSnnTorchError", "copy_to_snntorch", "from_snntorch"]
