"""neurosim.continual."""
