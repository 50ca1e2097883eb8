"""neurosim.training."""
