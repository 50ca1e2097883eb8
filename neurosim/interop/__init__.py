"""Interoperability with other SNN libraries: convert their models so neurosim can train them.

* :mod:`neurosim.interop.snntorch` — ``snntorch.Leaky``/``RLeaky``/``Synaptic`` + ``torch.nn`` models →
  neurosim ``Sequential`` of ``LIF``/``RLIF``/``CubaLIF`` (identical spikes; trainable with BPTT, SLTT, SLTT-K)
  and back.
"""

from neurosim.interop.snntorch import UnsupportedSnnTorchError, copy_to_snntorch, from_snntorch

__all__ = ["UnsupportedSnnTorchError", "copy_to_snntorch", "from_snntorch"]
