"""neurosim.data."""
