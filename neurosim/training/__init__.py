"""Training: losses, methods (BPTT; SLTT/SLTT-K), the Trainer, and atomic checkpoints."""

from neurosim.training.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from neurosim.training.losses import TET, LastCE, Loss, MaxCE, RateCE, SLTTMix, get_loss, predict
from neurosim.training.memory import SavedTensorMeter, TrainingMemoryError, tune_cpu_allocator
from neurosim.training.methods import BPTT, METHODS, StepOutput, get_method, register_method
from neurosim.training.history import best_epoch, patience_spent, stopped_early
from neurosim.training.trainer import Trainer, resolve_device, seed_everything

__all__ = [
    "BPTT", "METHODS", "TET", "CheckpointError", "LastCE", "Loss", "MaxCE", "RateCE", "SLTTMix", "SavedTensorMeter", "StepOutput", "Trainer",
    "TrainingMemoryError",
    "atomic_write_bytes", "atomic_write_text", "best_epoch", "get_loss", "get_method", "load_checkpoint", "predict",
    "patience_spent", "register_method", "resolve_device", "save_checkpoint", "seed_everything", "stopped_early",
    "tune_cpu_allocator",
]
