"""Training a model through a task sequence with one continual-learning method, and the accuracy matrix it yields.

Methods (each trains every task with the same optimiser, epochs, batch size and training method — BPTT, SLTT or
SLTT-K, whichever ``train.method`` names):

* ``baseline`` — plain fine-tuning: each task is trained as if the earlier ones did not exist.
* ``ewc`` — elastic weight consolidation: after each task a diagonal Fisher ``F`` (mean squared per-sample
  gradient of the loss) and the weights ``θ*`` are stored; later tasks add ``λ Σ_t F_t (θ − θ*_t)`` to the gradient
  (the gradient of ``λ/2 Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²``).
* ``hlop`` — :class:`neurosim.continual.HLOP`: Hebbian subspaces learn each task's presynaptic activity (during its
  training, then in ``hlop.hebbian_epochs`` Hebbian-only passes in eval mode); later tasks' weight gradients are
  projected onto the orthogonal complement of the old subspaces. The last task learns no subspace (nothing follows).
  With ``model.recurrent`` the hidden layers' feedback weights are protected too (one more subspace size per hidden
  layer in ``hlop.sizes``, see :mod:`neurosim.continual.projection`).
* ``multitask`` — the joint upper bound: one model trained on the union of every task's training data, for the
  same number of epochs (each epoch sees every task's data once). Only its final accuracies exist (one row).

After task ``i`` every task ``j`` is evaluated on its test split: ``A[i, j]`` in points (0–100).
With ``train.activity_penalty = λ > 0`` every method adds :mod:`neurosim.training.regularize`'s activity penalty to
its training loss, as ``neurosim train`` does (HLOP projects its gradient like the task loss's; EWC's Fisher is of
the task loss alone), and each task's mean training activity is recorded (:attr:`MethodResult.activity`).
With ``train.freeze_after_first`` (the paper's code, for every method) parameters with fewer than two dims — biases,
BatchNorm affine and statistics, learnable thresholds — are frozen once task 0 is learnt.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from neurosim.config import ConfigError
from neurosim.continual.config import ContinualConfig, subspace_sizes
from neurosim.continual.metrics import bwt as bwt_of
from neurosim.continual.metrics import seed_std
from neurosim.continual.projection import HLOP, freeze_non_weights, presynaptic_size, protected_layers
from neurosim.continual.tasks import Task, check_same_inputs, concat_tasks
from neurosim.data.loaders import FrameLoader
from neurosim.nn import as_float, build_model, is_stateful, run_chunked
from neurosim.training.losses import Loss, get_loss, predict
from neurosim.training.methods import configured_method
from neurosim.training.progress import loader_bar
from neurosim.training.regularize import ActivityPenalty

__all__ = ["EWC", "MethodResult", "TaskLoss", "activity_penalty", "build_continual_model", "evaluate_task",
           "run_method", "summarize"]


class TaskLoss(Loss):
    """A loss restricted to task heads: each sample's loss sees only the outputs of its task's classes.

    Args:
        base: the loss on ``[T, B, C]`` outputs (``rate_ce``, ``tet``, ``sltt_mix`` …).
        heads: None (shared head: ``base`` unchanged), or disjoint class tuples, one per head; a sample belongs
            to the head holding its label, and its label becomes the index inside that head.
    """

    def __init__(self, base: Loss, heads: Sequence[Sequence[int]] | None = None) -> None:
        self.base = base
        self.per_step = bool(getattr(base, "per_step", False))
        self.heads = None if heads is None else [torch.as_tensor(list(h), dtype=torch.long) for h in heads]
        if self.heads is not None:
            seen = torch.cat(self.heads)
            if len(seen.unique()) != len(seen):
                raise ValueError(f"task heads must have disjoint classes, got {[h.tolist() for h in self.heads]}")

    def _groups(self, y: torch.Tensor):
        for cols in self.heads:
            cols = cols.to(y.device)
            hit = (y[:, None] == cols[None, :])
            idx = hit.any(1).nonzero().squeeze(1)
            if len(idx):
                yield idx, cols, hit[idx].float().argmax(1)

    def _check_labels(self, y: torch.Tensor) -> None:
        known = torch.cat(self.heads).to(y.device)
        if not torch.isin(y, known).all():
            raise ValueError(f"labels {sorted(set(y.tolist()) - set(known.tolist()))} belong to no task head")

    def __call__(self, out_seq, y):
        if self.heads is None:
            return self.base(out_seq, y)
        self._check_labels(y)
        total = 0.0
        for idx, cols, yy in self._groups(y):
            total = total + self.base(out_seq[:, idx][:, :, cols], yy) * len(idx)
        return total / len(y)

    def step(self, o_t, y):
        if self.heads is None:
            return self.base.step(o_t, y)
        self._check_labels(y)
        total = 0.0
        for idx, cols, yy in self._groups(y):
            total = total + self.base.step(o_t[idx][:, cols], yy) * len(idx)
        return total / len(y)


def _correct(out_seq: torch.Tensor, y: torch.Tensor, classes: tuple[int, ...] | None) -> int:
    if classes is None:
        return int((predict(out_seq) == y).sum())
    cols = torch.as_tensor(classes, device=y.device)
    pred = cols[predict(out_seq[:, :, cols])]
    return int((pred == y).sum())


@torch.no_grad()
def evaluate_task(model: torch.nn.Module, task: Task, batch_size: int = 256,
                  device: torch.device | str = "cpu") -> float:
    """Test accuracy (points, 0–100) of ``model`` on ``task``, through the task's head.

    A stateful model (every neurosim model) runs each batch a chunk of steps at a time (:func:`neurosim.nn.run_chunked`,
    as the Trainer evaluates), and compact event counts (a :class:`~neurosim.continual.Task` of a registry dataset)
    are made float32 a chunk at a time: neither the batch's float32 copy nor its activations of all ``T`` steps are
    held at once (``batch_size × T`` samples: 256 × 400 steps of 34 × 34 × 2 frames are 947 MB of float32)."""
    model.eval()
    loader = FrameLoader(task.x_test, task.y_test, batch_size, shuffle=False, device=device)
    correct = 0
    for x_seq, y in loader.iter_from(0, compact=True):
        out_seq, _ = run_chunked(model, x_seq) if is_stateful(model) else model(as_float(x_seq))
        correct += _correct(out_seq, y, task.classes)
    return 100.0 * correct / len(task.y_test)


def build_continual_model(cfg: ContinualConfig, tasks: Sequence[Task]) -> torch.nn.Module:
    """The config's network, after checking it fits the tasks' inputs and classes (every task's the same shape)."""
    check_same_inputs(tasks)
    sample = tasks[0].input_shape
    want = tuple(cfg.model.input_shape)
    n_sample, n_want = int(np.prod(sample)), int(np.prod(want))
    if (cfg.model.kind == "conv" and sample != want) or (cfg.model.kind == "mlp" and n_sample != n_want):
        raise ConfigError(f"model.input_shape: is {list(want)} but the tasks give inputs of shape {list(sample)} "
                          f"per step; set model.input_shape = {list(sample)}")
    top = max(int(t.y_train.max()) for t in tasks)
    if top >= cfg.model.num_classes:
        raise ConfigError(f"model.num_classes: is {cfg.model.num_classes} but the tasks have labels up to {top}; "
                          f"set model.num_classes = {top + 1}")
    return build_model(cfg.model, cfg.neuron)


@dataclass
class MethodResult:
    """One method's run: ``matrix[i][j]`` = accuracy (points) on task j after task i; multitask has one row.

    ``seconds`` is the wall time of the whole run (training and every evaluation); ``cpu_seconds`` the CPU time the
    process used meanwhile, which other processes on a shared machine disturb much less. ``activity`` (with
    ``train.activity_penalty``, else None): per task trained (multitask: one), the mean over its training batches
    of what the penalty counts, per step and sample — the synaptic operations as a fraction of the most possible
    (``synops``) or the firing rate (``spikes``). ``state``: the model's weights after the last task (a CPU copy of its
    state dict: what :func:`~neurosim.continual.run_continual` keeps in ``models/``), None for a result read back
    from a file.
    """

    method: str
    seed: int
    matrix: list[list[float]]
    seconds: float
    cpu_seconds: float = float("nan")
    activity: list[float | None] | None = None
    state: dict | None = field(default=None, repr=False, compare=False)

    @property
    def acc(self) -> float:
        return float(np.mean(self.matrix[-1]))

    @property
    def bwt(self) -> float:
        if len(self.matrix) != len(self.matrix[-1]):
            return float("nan")  # multitask: no per-task history
        return bwt_of(self.matrix)

    def as_dict(self) -> dict:
        out = {"method": self.method, "seed": self.seed, "matrix": self.matrix, "acc": self.acc,
               "bwt": None if np.isnan(self.bwt) else self.bwt, "seconds": self.seconds,
               "cpu_seconds": self.cpu_seconds}
        if self.activity is not None:
            out["activity"] = self.activity
        return out


class EWC:
    """Elastic weight consolidation with one (Fisher, anchor) pair per finished task.

    The penalty's gradient is ``K (θ − θ̄)`` with stiffness ``K = λ Σ_t F_t`` and ``θ̄ = Σ_t F_t θ*_t / Σ_t F_t``
    (the same as summing the per-task terms).

    Args:
        model: the model being trained.
        lam: penalty weight ``λ``.
        fisher_samples: training samples per task for the empirical diagonal Fisher (per-sample gradients).
        max_stiffness: cap on ``K`` per weight; None: no cap. With plain SGD at learning rate ``η`` a weight whose
            ``η K > 2`` oscillates with growing amplitude (explicit steps on a stiff quadratic), so
            :func:`run_method` caps ``K`` at ``1/η`` for SGD: such a weight is pulled straight back to ``θ̄``.
    """

    def __init__(self, model: torch.nn.Module, lam: float, fisher_samples: int = 200,
                 max_stiffness: float | None = None) -> None:
        self.model, self.lam, self.fisher_samples = model, float(lam), int(fisher_samples)
        self.max_stiffness = max_stiffness
        self.params = {n: p for n, p in model.named_parameters()}
        self.f_sum: dict[str, torch.Tensor] = {}  # Σ_t F_t
        self.f_theta_sum: dict[str, torch.Tensor] = {}  # Σ_t F_t θ*_t

    def consolidate(self, task: Task, loss: Loss, seed: int = 0) -> None:
        """Add this task's Fisher and anchor (call after training it)."""
        g = torch.Generator().manual_seed(seed)
        n = min(self.fisher_samples, len(task.y_train))
        idx = torch.randperm(len(task.y_train), generator=g)[:n]
        device = next(self.model.parameters()).device
        fisher = {name: torch.zeros_like(p) for name, p in self.params.items() if p.requires_grad}
        was_training = self.model.training
        self.model.eval()  # the Fisher of the model as it will be evaluated (no dropout, BN statistics fixed)
        for i in idx.tolist():
            x_seq = as_float(task.x_train[i:i + 1].transpose(0, 1).to(device))  # [T, 1, ...] (counts: float32)
            y = task.y_train[i:i + 1].to(device)
            self.model.zero_grad(set_to_none=True)
            out_seq, _ = self.model(x_seq)
            loss(out_seq, y).backward()
            for name, f in fisher.items():
                grad = self.params[name].grad
                if grad is not None:
                    f.add_(grad.detach() ** 2, alpha=1.0 / n)
        self.model.zero_grad(set_to_none=True)
        self.model.train(was_training)
        for name, f in fisher.items():
            theta = self.params[name].detach()
            self.f_sum[name] = self.f_sum.get(name, torch.zeros_like(f)) + f
            self.f_theta_sum[name] = self.f_theta_sum.get(name, torch.zeros_like(f)) + f * theta

    @torch.no_grad()
    def add_penalty_grad(self) -> None:
        """``grad += K (θ − θ̄)`` (``= λ Σ_t F_t (θ − θ*_t)`` uncapped) for every parameter with a gradient."""
        for name, f in self.f_sum.items():
            p = self.params[name]
            if p.grad is None or not p.requires_grad:
                continue
            anchor = self.f_theta_sum[name] / f.clamp_min(1e-30)
            stiffness = self.lam * f
            if self.max_stiffness is not None:
                stiffness = stiffness.clamp_max(self.max_stiffness)
            p.grad.add_(stiffness * (p - anchor))


def _optimizer(model: torch.nn.Module, cfg: ContinualConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    tc = cfg.train
    if tc.optimizer == "adam":
        return torch.optim.Adam(params, lr=tc.lr)
    return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum)


def _train_mode(model: torch.nn.Module, frozen: bool) -> None:
    model.train()
    if frozen:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _train(model, task: Task, cfg: ContinualConfig, loss: Loss, seed: int, frozen: bool, device,
           after_backward: Callable[[], None] | None = None, after_step: Callable[[], None] | None = None,
           desc: str = "", progress: bool = False, penalty: ActivityPenalty | None = None) -> float | None:
    """Train ``task`` for ``train.epochs`` epochs; with ``penalty``, add it to the loss and return the mean activity
    it counted per batch (None without)."""
    tc = cfg.train
    activity, batches = 0.0, 0
    method = configured_method(tc)
    optimizer = _optimizer(model, cfg)
    loader = FrameLoader(task.x_train, task.y_train, tc.batch_size, shuffle=True, seed=seed, device=device)
    # compact event counts (uint8) to a method that converts them a step or chunk at a time (BPTT, SLTT, SLTT-K:
    # takes_compact_input), as the Trainer gives them: no float32 copy of a whole batch; float32 to any other
    compact = bool(getattr(method, "takes_compact_input", False))
    for epoch in range(tc.epochs):
        loader.set_epoch(epoch)
        _train_mode(model, frozen)
        # a bar that only counts, not tqdm(loader), which calls iter(loader) twice (neurosim.training.progress)
        with loader_bar(loader, f"{desc} epoch {epoch + 1}/{tc.epochs}", leave=False,
                        disable=None if progress else True) as bar:
            for x_seq, y in loader.iter_from(0, compact=compact):
                optimizer.zero_grad(set_to_none=True)
                with penalty.active() if penalty is not None else contextlib.nullcontext():
                    method.forward_backward(model, x_seq, y, loss)
                if penalty is not None and (a := penalty.pop_activity()) is not None:
                    activity, batches = activity + a, batches + 1
                if after_backward is not None:
                    after_backward()
                if tc.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                if after_step is not None:
                    after_step()
                bar.update()
    return activity / batches if batches else None


@torch.no_grad()
def _hebbian_passes(model, task: Task, hlop: HLOP, cfg: ContinualConfig, epochs: int, seed: int, frozen: bool,
                    device) -> None:
    """Hebbian-only passes over a task's training data after training it, in eval mode: the rows learn the
    activity of the trained network as it will be evaluated (no dropout, BatchNorm running statistics).

    A neurosim model runs each batch a chunk of steps at a time (:func:`neurosim.nn.run_chunked`) on its compact
    counts, made float32 a chunk at a time, inside :meth:`HLOP.one_batch`: the rows learn, bit for bit, what one call
    over all ``T`` steps of the float32 batch taught them (the vectors HLOP draws follow the calls otherwise), with
    one chunk's float copy in memory instead of the batch's (32 × 400 steps of 34 × 34 × 2 counts: 118 MB). A model
    whose protected layers include a recurrent layer's feedback (called once per step) runs each batch in one call."""
    loader = FrameLoader(task.x_train, task.y_train, cfg.train.batch_size, shuffle=True, seed=seed + 7,
                         device=device)
    chunked = is_stateful(model) and not hlop.per_step_layers()
    model.eval()
    with hlop.hebbian_only():
        for epoch in range(epochs):
            loader.set_epoch(epoch)
            for x_seq, _ in loader.iter_from(0, compact=True):
                if chunked:
                    with hlop.one_batch(x_seq.shape[0]):
                        run_chunked(model, x_seq)
                else:
                    model(as_float(x_seq))
                hlop.step()
    _train_mode(model, frozen)


def _warm_up(cfg: ContinualConfig, tasks: Sequence[Task], device: torch.device) -> None:
    """What a process does slowly the first time, done before the clock starts so that whichever method runs first
    is not charged for it in the wall and CPU times: the first optimizer makes torch import torch._dynamo (seconds),
    the first pass compiles the numba LIF kernels (seconds, once per install; then loads them from numba's cache),
    and the activity penalty's first count imports the NIR tools. A throwaway model on two samples, before the run
    seeds its generators (so its results do not change)."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    model = build_continual_model(cfg, tasks).to(device)
    penalty = activity_penalty(cfg, model)
    tc = cfg.train
    x_seq, y = tasks[0].x_train[:2].transpose(0, 1).to(device), tasks[0].y_train[:2].to(device)  # [T, 2, ...], [2]
    method = configured_method(tc)
    with penalty.active() if penalty is not None else contextlib.nullcontext():
        method.forward_backward(model, x_seq if getattr(method, "takes_compact_input", False) else as_float(x_seq),
                                y, get_loss(tc.loss, tc.loss_lambda))
    model.eval()
    with torch.no_grad():  # evaluation's pass
        model(as_float(x_seq))


def _resolve_device(name: str) -> torch.device:
    from neurosim.training.trainer import resolve_device

    return resolve_device(name)


def activity_penalty(cfg: ContinualConfig, model: torch.nn.Module) -> ActivityPenalty | None:
    """The activity penalty ``train.activity_penalty`` adds to ``model``'s training loss; None where it is 0.

    Raises:
        ConfigError: naming ``train.activity_penalty`` where the penalty cannot count the model's synapses.
    """
    tc = cfg.train
    if tc.activity_penalty <= 0:
        return None
    try:
        return ActivityPenalty(model, tc.activity_penalty, tc.activity_penalty_on, input_shape=cfg.model.input_shape)
    except ValueError as e:
        raise ConfigError(f"train.activity_penalty: {e}") from None


def hlop_plan(cfg: ContinualConfig, model: torch.nn.Module, num_tasks: int
              ) -> tuple[list[str], list[float], list[tuple[int, ...]]]:
    """What HLOP will protect in ``model`` over ``num_tasks`` tasks: layer names, Hebbian rate per layer, and the
    new subspace rows per layer for every task (none at the last task: no later task is protected from it).

    Raises:
        ConfigError: naming the ``hlop.*`` key whose value cannot work with this model and task count (unknown
            layers, more rates than layers, a size list of the wrong length, more rows than a layer has inputs),
            so that a run can check its config before any training.
    """
    try:
        chosen = dict(protected_layers(model, list(cfg.hlop.layers) or None))
    except ValueError as e:
        raise ConfigError(f"hlop.layers: {e}") from None
    names = list(chosen)
    if len(cfg.hlop.lr) > len(names):
        raise ConfigError(f"hlop.lr: {len(cfg.hlop.lr)} rates for {len(names)} protected layers; give at most one "
                          "per layer (the last one repeats)")
    lrs = list(cfg.hlop.lr) + [cfg.hlop.lr[-1]] * (len(names) - len(cfg.hlop.lr))
    key = "hlop.preset" if cfg.hlop.preset != "none" else "hlop.sizes"
    rows = dict.fromkeys(names, 0)
    schedule = []
    for task in range(num_tasks):
        sizes = subspace_sizes(cfg.hlop, task, len(names), tuple(names))
        if task == num_tasks - 1:
            sizes = (0,) * len(names)
        for i, (name, k) in enumerate(zip(names, sizes)):
            rows[name] += k
            inputs = presynaptic_size(chosen[name])
            if rows[name] > inputs:
                which = (f" (protected layer {i + 1} of {len(names)}: entry {i + 1} of each hlop.sizes list)"
                         if key == "hlop.sizes" and len(names) > 1 else "")
                fix = ("the pmnist_paper preset is the paper's schedule for its 784-800-800-10 MLP: for this model set "
                       "hlop.preset = 'none' and give hlop.sizes" if key == "hlop.preset"
                       else "use smaller sizes or fewer tasks")
                raise ConfigError(f"{key}: HLOP layer {name!r}{which} would need {rows[name]} subspace rows by task "
                                  f"{task} but has only {inputs} inputs; {fix}")
        schedule.append(sizes)
    return names, lrs, schedule


def run_method(cfg: ContinualConfig, method: str, tasks: Sequence[Task], seed: int = 0,
               progress: bool = False) -> MethodResult:
    """Train a fresh model through ``tasks`` with ``method``; returns its accuracy matrix and wall time.

    Args:
        cfg: settings (model, neuron, train, hlop, ewc sections).
        method: ``baseline`` | ``ewc`` | ``hlop`` | ``multitask``.
        tasks: the task sequence (see :mod:`neurosim.continual.tasks`).
        seed: seeds the model's initialisation, batch order and HLOP's new rows.

    On CPU the malloc thresholds are tuned as the Trainer does (:func:`neurosim.training.tune_cpu_allocator`;
    set any ``MALLOC_*`` variable to leave malloc alone).
    """
    from neurosim.training.memory import tune_cpu_allocator
    from neurosim.training.trainer import seed_everything

    if method not in ("baseline", "ewc", "hlop", "multitask"):
        raise ValueError(f"unknown continual method {method!r}; choose baseline, ewc, hlop or multitask")
    if not tasks:
        raise ValueError("run_method needs at least one task")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = _resolve_device(cfg.train.device)
    if device.type == "cpu":
        tune_cpu_allocator()
    _warm_up(cfg, tasks, device)
    t0, c0 = time.perf_counter(), time.process_time()
    seed_everything(seed)
    model = build_continual_model(cfg, tasks).to(device)
    penalty = activity_penalty(cfg, model)
    base_loss = get_loss(cfg.train.loss, cfg.train.loss_lambda)

    def evaluate_all() -> list[float]:
        return [evaluate_task(model, t, device=device) for t in tasks]

    if method == "multitask":
        heads = None if tasks[0].classes is None else [t.classes for t in tasks]
        a = _train(model, concat_tasks(list(tasks)), cfg, TaskLoss(base_loss, heads), seed, False, device,
                   desc="multitask", progress=progress, penalty=penalty)
        final = evaluate_all()
        _warn_unlearnt(method, seed, tasks, final)
        return MethodResult(method, seed, [final], time.perf_counter() - t0, time.process_time() - c0,
                            None if penalty is None else [a], _cpu_state(model))

    hlop = ewc = None
    if method == "hlop":
        names, lrs, schedule = hlop_plan(cfg, model, len(tasks))
        hlop = HLOP(model, names, lr=lrs, iterations=cfg.hlop.iterations, momentum=cfg.hlop.momentum,
                    clamp=cfg.hlop.clamp, max_samples=cfg.hlop.max_samples or None,
                    orthonormalize=cfg.hlop.orthonormalize, seed=seed)
    elif method == "ewc":
        cap = 1.0 / cfg.train.lr if cfg.train.optimizer == "sgd" else None
        ewc = EWC(model, cfg.ewc.lam, cfg.ewc.fisher_samples, max_stiffness=cap)

    matrix: list[list[float]] = []
    activity: list[float | None] = []
    frozen = False
    for i, task in enumerate(tasks):
        loss = TaskLoss(base_loss, None if task.classes is None else [task.classes])
        if hlop is not None:
            hlop.begin_task(schedule[i])
        a = _train(model, task, cfg, loss, seed * 1000 + i, frozen, device,
                   after_backward=ewc.add_penalty_grad if ewc is not None and i > 0 else None,
                   after_step=hlop.step if hlop is not None else None,
                   desc=f"{method} task {i}", progress=progress, penalty=penalty)
        if penalty is not None:
            activity.append(a)
        if hlop is not None:
            if cfg.hlop.hebbian_epochs and i < len(tasks) - 1:  # the last task learns no rows
                _hebbian_passes(model, task, hlop, cfg, cfg.hlop.hebbian_epochs, seed * 1000 + i, frozen, device)
            hlop.end_task()
        if ewc is not None:
            ewc.consolidate(task, loss, seed=seed * 1000 + i)
        if i == 0 and cfg.train.freeze_after_first:
            freeze_non_weights(model)
            frozen = True
        matrix.append(evaluate_all())
    if hlop is not None:
        hlop.remove()
    _warn_unlearnt(method, seed, tasks, [row[i] for i, row in enumerate(matrix)])
    return MethodResult(method, seed, matrix, time.perf_counter() - t0, time.process_time() - c0,
                        None if penalty is None else activity, _cpu_state(model))


#: a task counts as not learnt where its accuracy (points) is within this share of the way from always answering its
#: most common class (what a network whose output ignores its input scores) to 100 %
UNLEARNT_MARGIN = 0.1


def majority_rate(task: Task) -> float:
    """The test accuracy (points) of always answering ``task``'s most common test class: what a model whose output
    does not depend on its input scores (within the task's head, for a class-split task)."""
    return 100.0 * float(torch.bincount(task.y_test).max()) / len(task.y_test)


def _warn_unlearnt(method: str, seed: int, tasks: Sequence[Task], learnt: Sequence[float]) -> None:
    """Warn where a task's accuracy just after training it (``learnt[i]``: the matrix's diagonal, or the multitask
    bound's final row) is little better than answering its most common class: the network learnt nothing of it (hidden
    layers that never spike, a learning rate far off), and its ACC and BWT say nothing about forgetting. A task whose
    test samples are all of one class is left out: answering that class is right every time, so no accuracy of it
    tells learning from not."""
    bad = [(i, a, majority_rate(t)) for i, (t, a) in enumerate(zip(tasks, learnt))]
    bad = [(i, a, floor) for i, a, floor in bad if floor < 100.0 and a <= floor + UNLEARNT_MARGIN * (100.0 - floor)]
    if not bad:
        return

    def listed(values):
        return ", ".join(values[:5]) + (f", … ({len(values)} in all)" if len(values) > 5 else "")

    when = "after the joint training" if method == "multitask" else "just after training each"
    which = "any of its tasks" if len(bad) == len(tasks) else f"task{'s' * (len(bad) > 1)}"
    warnings.warn(f"{method} (seed {seed}) did not learn {which} {listed([str(i) for i, _, _ in bad])}: accuracy "
                  f"{when} {listed([f'{a:.1f} %' for _, a, _ in bad])}, little better than always answering the task's "
                  f"most common class ({listed([f'{f:.1f} %' for _, _, f in bad])}), so its ACC and BWT say nothing "
                  "about forgetting. Check that the hidden layers spike (a threshold too high for the inputs leaves "
                  "them silent: lower neuron.v_th) and that train.lr and train.epochs learn one task alone",
                  RuntimeWarning, stacklevel=3)


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def summarize(results: Sequence[MethodResult]) -> dict[str, float | None]:
    """Mean and sample std (ddof = 1; None for one seed) over seeds of ACC and BWT (points), wall and CPU seconds,
    and (with the activity penalty) the training activity averaged over tasks, for results of one method."""
    accs = np.array([r.acc for r in results])
    bwts = np.array([r.bwt for r in results])
    secs = np.array([r.seconds for r in results])
    out = {"acc_mean": float(accs.mean()), "acc_std": seed_std(accs),
           "seconds_mean": float(secs.mean()), "seconds_std": seed_std(secs)}
    cpu = np.array([r.cpu_seconds for r in results])
    if np.isfinite(cpu).all():
        out.update(cpu_seconds_mean=float(cpu.mean()), cpu_seconds_std=seed_std(cpu))
    if not np.isnan(bwts).any():
        out.update(bwt_mean=float(bwts.mean()), bwt_std=seed_std(bwts))
    # with the activity penalty: the mean over tasks of each seed's training activity, over seeds
    per_seed = [np.mean(r.activity) if r.activity and None not in r.activity else np.nan for r in results]
    if results and np.isfinite(per_seed).all():
        out.update(activity_mean=float(np.mean(per_seed)), activity_std=seed_std(per_seed))
    return out
