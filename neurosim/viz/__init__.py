"""Matplotlib figures (headless): rasters, membrane traces, event frames, training curves."""

from neurosim.viz.plots import event_frames, membrane_trace, raster, save_figure, training_curves

__all__ = ["event_frames", "membrane_trace", "raster", "save_figure", "training_curves"]
