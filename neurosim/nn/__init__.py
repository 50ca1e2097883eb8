"""neurosim.nn."""
