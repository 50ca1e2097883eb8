"""neurosim.viz."""
