"""neurosim.functional."""
