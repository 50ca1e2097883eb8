"""hardware_models — energy, latency and mapping estimates for SNNs on neuromorphic and RRAM hardware.

Standalone: depends on numpy and nir only, never on torch or neurosim. Inputs are a NIR graph and an
``ActivityProfile``.
"""
