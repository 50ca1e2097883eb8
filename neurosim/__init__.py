"""neurosim — spiking neural networks on event data, continual learning, and hardware estimates.

Subpackages follow one direction of dependency (see DESIGN.md): ``functional`` (pure maths) →
``nn`` (modules) → ``training`` / ``continual`` → ``cli``.
"""

__version__ = "0.1.0"
