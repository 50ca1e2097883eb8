"""neurosim.continual: continual learning of SNNs without forgetting — HLOP, task protocols, ACC/BWT.

HLOP (Hebbian-learning-based orthogonal projection; Xiao et al., ICLR 2024): lateral subspace neurons learn the
principal subspace of each protected layer's presynaptic activity with Oja's rule (:mod:`.hebbian`); while later
tasks train, the weight gradients of Linear/Conv2d layers are projected onto the orthogonal complement of the old
subspaces, ``ΔW = δ (x − H_oldᵀ H_old x)ᵀ`` (:mod:`.projection`) — with any training method (BPTT, SLTT, SLTT-K).

* :class:`HLOP`, :class:`HebbianSubspace` — the method, usable on any model.
* :func:`permuted_tasks`, :func:`class_split_tasks`, :func:`load_source` — task sequences (:mod:`.tasks`).
* :func:`run_method` — train through the tasks with ``baseline`` | ``ewc`` | ``hlop`` | ``multitask``; accuracy matrix.
* :func:`acc`, :func:`bwt` — metrics (:mod:`.metrics`).
* :func:`run_continual`, :func:`load_continual_config` — the ``neurosim continual --config FILE.toml`` job; it keeps
  each method's final model as a checkpoint that ``neurosim estimate`` / ``evaluate`` / ``export`` take
  (:mod:`.checkpoint`).
"""

from neurosim.continual.config import (
    ContinualConfig, ContinualModelConfig, ContinualNeuronConfig, ContinualTrainConfig, EWCConfig, HLOPConfig,
    TasksConfig, continual_config_from_dict, load_continual_config, subspace_sizes,
)
from neurosim.continual.hebbian import HebbianSubspace, orthonormality_error, project_out, subspace_error
from neurosim.continual.metrics import acc, bwt
from neurosim.continual.projection import HLOP, freeze_non_weights, presynaptic_vectors, protectable_layers
from neurosim.continual.runner import ContinualRun, build_tasks, run_continual
from neurosim.continual.tasks import Task, class_split_tasks, load_source, permuted_tasks
from neurosim.continual.train import EWC, MethodResult, TaskLoss, evaluate_task, run_method, summarize

__all__ = [
    "EWC", "HLOP", "ContinualConfig", "ContinualModelConfig", "ContinualNeuronConfig", "ContinualRun",
    "ContinualTrainConfig", "EWCConfig", "HLOPConfig", "HebbianSubspace", "MethodResult", "Task", "TaskLoss",
    "TasksConfig", "acc", "build_tasks", "bwt", "class_split_tasks", "continual_config_from_dict", "evaluate_task",
    "freeze_non_weights", "load_continual_config", "load_source", "orthonormality_error", "permuted_tasks",
    "presynaptic_vectors", "project_out", "protectable_layers", "run_continual", "run_method", "subspace_error",
    "subspace_sizes", "summarize",
]
