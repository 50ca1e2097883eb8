"""neurosim.export."""
