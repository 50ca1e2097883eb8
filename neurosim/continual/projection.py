r"""HLOP: Hebbian subspaces on a model's Linear/Conv2d layers, and orthogonal projection of their weight gradients.

For each protected layer with presynaptic input ``x`` (a Linear layer's input vector; a Conv2d layer's unfolded
input patch of size ``C·kh·kw``), HLOP keeps Hebbian subspace neurons ``H`` (:class:`HebbianSubspace`) and, while a
later task trains, replaces the weight update by

.. math::

    \Delta W = \delta\,(x - H_{old}^\top H_{old}\, x)^\top = \delta x^\top (I - H_{old}^\top H_{old}),

i.e. the gradient is projected onto the orthogonal complement of the old tasks' input subspace; the forward pass
is unchanged. Because ``I − H_oldᵀH_old`` is one fixed matrix during a task, projecting the presynaptic vector of
every sample, position and time step and summing is the same as right-multiplying the summed weight gradient by it.
HLOP therefore acts as a tensor hook on each protected weight: whatever produced the gradient — BPTT over the full
sequence, SLTT's per-chunk (or per-step) backward passes, SLTT-K — every contribution is projected before it is
accumulated.

The Hebbian rows learn from the same presynaptic activity: a forward pre-hook on each protected layer collects its
input while HLOP's Hebbian learning is on and the model is in training mode (every time step of every sample, as
in the HLOP code for BPTT), and :meth:`HLOP.step` — called once per batch, like ``optimizer.step()`` — runs the
Oja iterations on everything collected since the last step (or on a uniform random sample of at most
``max_samples`` vectors per layer, kept as the calls arrive, so that memory does not grow with ``T``). A batch is
one Hebbian update however the training method splits it into forward calls (BPTT and SLTT on CPU run long
sequences in chunks of ~128 samples, SLTT with ``time_chunk=1`` one step per call, SLTT-K its drawn steps and
forward-only stretches apart; a GPU runs all ``T`` steps at once), so ``time_chunk``, the device and the method's
call pattern do not change what HLOP learns (nor, in distribution, which vectors a sample holds).
Inside :meth:`HLOP.hebbian_only` eval-mode passes teach the rows too (extra passes after a task, on the activity
the task is evaluated with). Inside :meth:`HLOP.one_batch` a batch run a chunk of steps at a time draws exactly the
vectors one call over all its steps draws (those passes run so, on compact counts made float a chunk at a time).

**Recurrent layers** (:class:`neurosim.nn.RLIF`, ``model.recurrent``). A dense recurrence's feedback weights are a
``Linear`` (``<layer>.recurrent``) and are protected like every other: their presynaptic vector at step ``t`` is the
layer's own spikes ``s[t−1]`` (zeros at the first step), which the pre-hook sees because a hooked ``.recurrent``
makes the layer run its per-step loop and call it once per step (not its fused scan, which is as fast but calls
no module). Projecting both ``W_in`` and ``W_rec`` keeps an old task's input current
``W_in·x[t] + W_rec·s[t−1]`` at every step unchanged, so by induction over the steps its membranes and spikes are
unchanged too (tested with exact subspaces). The HLOP paper only trains feed-forward networks; the same projection
of recurrent weights onto the complement of the old hidden activity is the one of Duncker et al. (NeurIPS 2020,
"Organizing recurrent network dynamics by task-computation to enable continual learning") for rate RNNs. A
one-to-one recurrence (``connectivity="diagonal"``) has one weight per neuron, ``[N]``: there is no subspace to
project on (each neuron's input is one number), so it is not protected; :func:`freeze_non_weights` freezes it with
the other per-neuron parameters after the first task, which is what keeps it from forgetting.

Typical use (what :func:`neurosim.continual.run_method` does, plus a checkpoint after every task)::

    hlop = HLOP(model, lr=0.01)
    for task, sizes in zip(tasks, schedule):
        hlop.begin_task(sizes)   # new Hebbian rows; project onto the complement of the old ones
        for x_seq, y in task:    # any training method; gradients are projected
            optimizer.zero_grad(); method.forward_backward(model, x_seq, y, loss); optimizer.step()
            hlop.step()          # H learns from the batch's presynaptic activity
        hlop.end_task()          # merge (after a last step): this task's rows join the protected subspace
        torch.save({"model": model.state_dict(), "hlop": hlop.state_dict()}, "after_task.pt")  # a checkpoint

    # resume in a new process: a model of the same layout and an HLOP of the same arguments, then the saved states
    ckpt = torch.load("after_task.pt")
    model.load_state_dict(ckpt["model"]); hlop = HLOP(model, lr=0.01); hlop.load_state_dict(ckpt["hlop"])

Example:
    >>> import torch
    >>> from neurosim.nn import LIF, Flatten, Linear, Sequential
    >>> net = Sequential(Flatten(), Linear(6, 4, bias=False), LIF(beta=0.9), Linear(4, 3, bias=False))
    >>> hlop = HLOP(net, lr=0.05, orthonormalize=True)   # exact projector even before Oja has converged
    >>> [name for name, _ in hlop.layers]
    ['1', '3']
    >>> hlop.begin_task([2, 1]); net(torch.rand(5, 8, 6))[0].sum().backward(); hlop.step(); hlop.end_task()
    >>> hlop.begin_task([1, 1])
    >>> net.zero_grad(); net(torch.rand(5, 8, 6))[0].sum().backward()
    >>> h_old = hlop.subspaces["1"].frozen
    >>> float((net[1].weight.grad @ h_old.T).abs().max()) < 1e-5    # nothing moves inside the old subspace
    True
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from neurosim.continual.hebbian import HebbianSubspace, _orthonormal_rows, project_out

__all__ = ["HLOP", "freeze_non_weights", "presynaptic_count", "presynaptic_size", "presynaptic_vectors",
           "protectable_layers", "protected_layers"]


def protectable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every ``Linear`` and ``Conv2d`` (torch's or neurosim's time-distributed ones) of ``model``, in order; a dense
    recurrent layer's feedback weights (``<layer>.recurrent``) among them."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def protected_layers(model: nn.Module, layers: Sequence[str] | None = None) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]`` that HLOP protects: the named ``layers`` of ``model``, or all protectable ones (None).

    Raises:
        ValueError: a name given twice, a name that is not a Linear/Conv2d of the model, or nothing to protect.
    """
    available = dict(protectable_layers(model))
    names = list(available) if layers is None else list(layers)
    if len(set(names)) != len(names):
        raise ValueError(f"HLOP layers {names} name a layer twice")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"HLOP layers {unknown} are not Linear/Conv2d layers of the model; available: "
                         f"{list(available)}")
    if not names:
        raise ValueError("HLOP found no Linear or Conv2d layer to protect in the model")
    return [(n, available[n]) for n in names]


def presynaptic_size(module: nn.Module) -> int:
    """The length of a layer's presynaptic vectors: a Linear's inputs, a Conv2d's patch ``C·kh·kw``."""
    if isinstance(module, nn.Linear):
        return module.in_features
    kh, kw = module.kernel_size
    return module.in_channels * kh * kw


def _check_conv(module: nn.Conv2d) -> None:
    if module.groups != 1:
        raise ValueError(f"HLOP supports Conv2d with groups = 1 only, got groups = {module.groups}")
    if module.padding_mode != "zeros":
        raise ValueError(f"HLOP supports zero padding only, got padding_mode = {module.padding_mode!r}")
    if isinstance(module.padding, str):
        raise ValueError(f"HLOP needs numeric Conv2d padding, got {module.padding!r}")


def _conv_positions(module: nn.Conv2d, height: int, width: int) -> tuple[int, int]:
    """Output rows and columns of a Conv2d on a ``height × width`` input (the ``L = rows·cols`` positions)."""
    out = []
    for size, k, s, p, d in zip((height, width), module.kernel_size, module.stride, module.padding, module.dilation):
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return out[0], out[1]


def presynaptic_count(module: nn.Module, x: torch.Tensor) -> int:
    """How many rows :func:`presynaptic_vectors` gives for input ``x``, without making them (``T·B·L`` for a
    Conv2d with ``L`` output positions, ``T·B`` for a Linear on ``[T, B, n]``)."""
    if isinstance(module, nn.Linear):
        return x.numel() // module.in_features
    if isinstance(module, nn.Conv2d):
        _check_conv(module)
        rows, cols = _conv_positions(module, x.shape[-2], x.shape[-1])
        return (x.numel() // (x.shape[-3] * x.shape[-2] * x.shape[-1])) * max(rows, 0) * max(cols, 0)
    raise TypeError(f"HLOP protects Linear and Conv2d layers, got {type(module).__name__}")


def presynaptic_vectors(module: nn.Module, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """The presynaptic vectors a layer's weight multiplies, one row per sample, time step (and position).

    Linear: ``[..., n] → [M, n]``. Conv2d on ``[T, B, C, H, W]`` (or ``[B, C, H, W]``): the unfolded patches,
    ``[T·B·L, C·kh·kw]`` with ``L`` output positions, ordered like ``weight.reshape(out, -1)``.

    Args:
        module: the Linear or Conv2d layer.
        x: its input.
        index: only these rows (int64 positions in ``[0, presynaptic_count(module, x))``), equal to
            ``presynaptic_vectors(module, x)[index]`` but gathered straight from ``x``: a conv layer's full patch
            matrix is ``kh·kw`` times the size of its input and is never made. None: all rows.
    """
    if isinstance(module, nn.Linear):
        vecs = x.reshape(-1, module.in_features)
        return vecs if index is None else vecs[index.to(vecs.device)]
    if isinstance(module, nn.Conv2d):
        _check_conv(module)
        img = x.reshape(-1, *x.shape[-3:])  # fold time (and batch) — [T·B, C, H, W]
        if index is not None:
            return _conv_patches(module, img, index.to(img.device))
        patches = F.unfold(img, module.kernel_size, dilation=module.dilation, padding=module.padding,
                           stride=module.stride)  # [T·B, C·kh·kw, L]
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])
    raise TypeError(f"HLOP protects Linear and Conv2d layers, got {type(module).__name__}")


def _conv_patches(module: nn.Conv2d, img: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of the unfolded patch matrix of ``img`` (``[N, C, H, W]``), gathered without unfolding:
    row ``j`` is image ``j // L``'s patch at output position ``j % L``; entries in the zero padding are 0."""
    _, C, H, W = img.shape
    kh, kw = module.kernel_size
    (sh, sw), (ph, pw), (dh, dw) = module.stride, module.padding, module.dilation
    rows_out, cols_out = _conv_positions(module, H, W)
    positions = rows_out * cols_out
    n, pos = index // positions, index % positions  # image (t·b) and output position of every row, [M]
    rows = (pos // cols_out * sh - ph)[:, None] + torch.arange(kh, device=img.device) * dh  # [M, kh]
    cols = (pos % cols_out * sw - pw)[:, None] + torch.arange(kw, device=img.device) * dw  # [M, kw]
    channels = torch.arange(C, device=img.device)
    patches = img[n[:, None, None, None], channels[None, :, None, None], rows.clamp(0, H - 1)[:, None, :, None],
                  cols.clamp(0, W - 1)[:, None, None, :]]  # [M, C, kh, kw]
    if ph or pw:  # the zero padding: positions outside the image read a clamped pixel, now set to 0
        inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]  # [M, kh, kw]
        patches.masked_fill_(~inside[:, None], 0)
    return patches.reshape(index.shape[0], C * kh * kw)


def freeze_non_weights(model: nn.Module) -> list[str]:
    """Freeze what HLOP's paper freezes after the first task: every parameter with fewer than 2 dims (biases,
    BatchNorm affine, learnable thresholds and decays, one-to-one recurrent weights) gets ``requires_grad = False``,
    and BatchNorm layers are put
    in eval mode (running statistics fixed). Call again after ``model.train()`` (which re-enables BN updates).

    Returns:
        The names of the parameters frozen.
    """
    frozen = []
    for name, p in model.named_parameters():
        if p.dim() < 2 and p.requires_grad:
            p.requires_grad_(False)
            frozen.append(name)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return frozen


def _check_keys(state: Mapping, expected: Sequence[str], what: str, hint: str = "") -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        wrong = "; ".join(f"{kind} {keys}" for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys)
        raise ValueError(f"{what} has keys {list(state)}, expected {list(expected)} ({wrong}): load a dict that "
                         f"HLOP.state_dict() made{hint}")


def _smallest_uniform_keys(n: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """The ``m`` smallest of ``n`` independent uniform(0, 1) numbers, ascending (float64), drawn without making the
    ``n``: ``1 − U₍ⱼ₎ = ∏ᵢ₌₁ʲ Vᵢ^{1/(n−i+1)}`` with ``Vᵢ`` uniform (the minimum of ``n`` uniforms is
    ``1 − V^{1/n}``; the others are uniform above it)."""
    v = torch.rand(m, generator=generator, dtype=torch.float64)
    return -torch.expm1(torch.cumsum(torch.log(v) / (n - torch.arange(m, dtype=torch.float64)), 0))


@dataclass
class _Drawn:
    """A layer's presynaptic vectors from the forward calls since the last step: all of them, or (once they
    outnumber ``max_samples``) a uniform random sample of ``max_samples`` of them (:meth:`HLOP._merge`)."""

    seen: int = 0  # vectors the calls produced
    calls: int = 0  # forward calls collected
    parts: list[torch.Tensor] = field(default_factory=list)  # the kept vectors, [m, n] per part (one, once merged)
    keys: torch.Tensor | None = None  # the kept vectors' sampling keys, once a merge needed them (float64, CPU)
    total: int | None = None  # inside HLOP.one_batch: the vectors the batch's calls will produce in all
    plan: torch.Tensor | None = None  # inside HLOP.one_batch: the rows drawn among them (None: all are kept)


class HLOP:
    """Hebbian-learning-based orthogonal projection on a model's Linear/Conv2d layers.

    Args:
        model: any module; the protected layers are found by name.
        layers: names (as in ``model.named_modules()``) of the layers to protect; None protects every Linear and
            Conv2d (:func:`protectable_layers`), the shared output layer included, as in the paper's PMNIST MLP.
        lr: Hebbian learning rate, one for all layers or one per protected layer.
        iterations: Oja iterations per Hebbian update, i.e. per :meth:`step` (5 in the HLOP code).
        momentum: momentum of the Hebbian update (0.9).
        clamp: clip of each ``ΔH`` entry (10).
        max_samples: at most this many presynaptic vectors per Hebbian update: a uniform random sample of the
            batch's vectors (conv layers produce ``T·B·positions`` patches per batch), drawn as they arrive, so
            that a batch split into many forward calls (SLTT's one step per call) never holds more than this
            many per layer, whatever ``T``; only the drawn patches are gathered from a conv layer's input. None
            uses all (memory then grows with ``T·B``).
        orthonormalize: project with an orthonormal basis of ``span(H_old)`` (QR) instead of ``H_oldᵀH_old``
            itself. The paper uses ``H_old`` directly, which is a projector only as far as Oja has converged.
        seed: seed of the generator used for new rows and sample subsets.

    Attributes:
        layers: ``[(name, module)]`` protected.
        subspaces: ``{name: HebbianSubspace}``.
        projecting: whether gradients are being projected (True between :meth:`begin_task` and :meth:`end_task`).
        hebbian: whether forward passes in training mode teach the learning rows (at the next :meth:`step`).

    :meth:`state_dict` / :meth:`load_state_dict` checkpoint HLOP between tasks or between batches (after
    :meth:`step`): the subspaces, the task count, whether a task is running and the generator, so that a restored
    HLOP projects gradients and learns exactly as the original would have. The constructor's settings (``lr``,
    ``iterations``, …) are not part of the state: construct the HLOP to restore with the same ones, on a model of the
    same layout, and restore the model's and the optimizer's own state dicts alongside.
    """

    #: forward calls collected without a :meth:`step` after which HLOP warns and updates anyway (a user who forgot
    #: step() would otherwise never see the rows learn; with max_samples = None memory would also keep growing).
    #: A layer run one time step per call (SLTT; an RLIF's feedback ``.recurrent``) is called T times per batch:
    #: set it above T on the instance for T >= 1024
    MAX_PENDING_CALLS = 1024

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None, lr: float | Sequence[float] = 0.01,
                 iterations: int = 5, momentum: float = 0.9, clamp: float = 10.0, max_samples: int | None = 8192,
                 orthonormalize: bool = False, seed: int = 0) -> None:
        chosen = protected_layers(model, layers)
        names = [name for name, _ in chosen]
        lrs = [float(lr)] * len(names) if isinstance(lr, (int, float)) else [float(v) for v in lr]
        if len(lrs) != len(names):
            raise ValueError(f"HLOP lr: {len(lrs)} values for {len(names)} protected layers {names}")
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples must be >= 1 or None, got {max_samples!r}")
        self.model = model
        self.layers = chosen
        self.max_samples = max_samples
        self.orthonormalize = orthonormalize
        self.generator = torch.Generator().manual_seed(int(seed))
        self.subspaces: dict[str, HebbianSubspace] = {}
        for (name, m), rate in zip(self.layers, lrs):
            w = m.weight
            # with an orthonormal basis only the rows' span protects: rows grown long are a warning, not an error
            self.subspaces[name] = HebbianSubspace(presynaptic_size(m), lr=rate, iterations=iterations,
                                                   momentum=momentum, clamp=clamp, device=w.device, dtype=w.dtype,
                                                   long_rows="warn" if orthonormalize else "raise")
        self._bases: dict[str, torch.Tensor] = {}
        self.projecting = False
        self.hebbian = False
        self._hebbian_in_eval = False  # inside hebbian_only(): learn from eval-mode passes too
        self.tasks_done = 0
        self._pending: dict[str, _Drawn] = {}  # per layer: what the forward calls since the last step() gave
        self._batch_steps: int | None = None  # inside one_batch(): the batch's time steps, run a chunk at a time
        self._warned_no_step = False
        self._handles = []
        for name, m in self.layers:
            self._handles.append(m.register_forward_pre_hook(self._make_pre_hook(name)))
            self._handles.append(m.weight.register_hook(self._make_grad_hook(name, m)))

    # ------------------------------------------------------------------ hooks
    def _make_pre_hook(self, name: str):
        def hook(module, args):
            if self.hebbian and (module.training or self._hebbian_in_eval):
                self._collect(name, module, args[0])
        return hook

    def _make_grad_hook(self, name: str, module: nn.Module):
        def hook(grad):
            if not self.projecting:
                return None
            basis = self._bases.get(name)
            if basis is None or basis.shape[0] == 0:
                return None
            g2 = grad.reshape(grad.shape[0], -1)
            return project_out(g2, basis.to(grad.device, grad.dtype)).reshape(grad.shape)
        return hook

    @torch.no_grad()
    def _collect(self, name: str, module: nn.Module, x: torch.Tensor) -> None:
        sub = self.subspaces[name]
        if sub.num_rows == sub.num_frozen:
            return
        x = x.detach()
        seen = presynaptic_count(module, x)
        if self._batch_steps is not None:
            self._collect_chunk(name, module, x, seen)
            return
        limit = self.max_samples
        index = None
        if limit is not None and seen > limit:  # only the rows drawn are made (a conv's patches are many)
            index = torch.randperm(seen, generator=self.generator)[:limit]
        drawn = self._pending.setdefault(name, _Drawn())
        if drawn.calls == 0 or limit is None or drawn.seen + seen <= limit:
            # the batch's first call (one call per batch: exactly as drawn here), or everything so far is kept
            vecs = presynaptic_vectors(module, x, index)
            drawn.parts.append(vecs.clone() if index is None else vecs)  # (the input may be a buffer reused)
        else:
            self._merge(drawn, module, x, seen, index)
        drawn.seen += seen
        drawn.calls += 1
        if drawn.calls >= self.MAX_PENDING_CALLS:
            if not self._warned_no_step:
                self._warned_no_step = True
                warnings.warn(f"HLOP collected {drawn.calls} forward calls of layer {name!r} without a step(); call "
                              "hlop.step() once per batch (updating now: without a step the rows never learn). A "
                              "layer called once per time step (under SLTT, or a recurrent layer's feedback) is "
                              "called T times per batch: with T >= 1024 steps raise hlop.MAX_PENDING_CALLS above T",
                              RuntimeWarning, stacklevel=2)
            self._update(name)

    def _collect_chunk(self, name: str, module: nn.Module, x: torch.Tensor, seen: int) -> None:
        """Inside :meth:`one_batch`: a call of ``x.shape[0]`` of the batch's time steps. The layer's first call draws
        the batch's sample, ``randperm(total)[:max_samples]`` of all ``total`` vectors its calls will give, as one
        call over every step draws it; each call gathers the drawn rows it holds into their places."""
        drawn = self._pending.setdefault(name, _Drawn())
        steps, limit = self._batch_steps, self.max_samples
        if drawn.calls == 0:
            if x.dim() < 2 or seen % x.shape[0]:
                raise ValueError(f"HLOP.one_batch: layer {name!r} got an input of shape {tuple(x.shape)}, not "
                                 "time-first [t, B, ...]: run the batch in one call")
            drawn.total = seen // x.shape[0] * steps
            if limit is not None and drawn.total > limit:
                drawn.plan = torch.randperm(drawn.total, generator=self.generator)[:limit]
        elif drawn.total is None:
            raise ValueError(f"HLOP.one_batch: layer {name!r} collected calls before the block: call hlop.step() "
                             "first")
        start = drawn.seen
        if start + seen > drawn.total:
            raise ValueError(f"HLOP.one_batch: layer {name!r} gave {start + seen} presynaptic vectors, more than the "
                             f"{drawn.total} of {steps} time steps: the calls must be the batch's steps, in order")
        if drawn.plan is None:
            drawn.parts.append(presynaptic_vectors(module, x).clone())  # (the input may be a buffer reused)
        else:
            slots = ((drawn.plan >= start) & (drawn.plan < start + seen)).nonzero().squeeze(1)
            if slots.numel():
                vecs = presynaptic_vectors(module, x, drawn.plan[slots] - start)
                if not drawn.parts:
                    drawn.parts.append(vecs.new_zeros(drawn.plan.shape[0], vecs.shape[1]))
                drawn.parts[0][slots.to(vecs.device)] = vecs
        drawn.seen += seen
        drawn.calls += 1

    @contextmanager
    def one_batch(self, steps: int) -> Iterator[None]:
        """The forward calls inside the block are one batch of ``steps`` time steps run a chunk of steps at a time,
        in order (:func:`neurosim.nn.run_chunked`), and HLOP learns from them exactly what one call over all
        ``steps`` would give it, bit for bit: each protected layer draws its sample of the batch's vectors at its
        first call, as that one call draws it (:meth:`_collect`), and later calls fill the rows drawn from their
        steps. Only a chunk of the input then needs to be float at a time (the Hebbian passes after a task take
        compact batches). Call :meth:`step` after the block, as after any batch.

        Not for a layer called once per step inside another's time loop (a recurrent layer's feedback
        ``.recurrent``: :meth:`per_step_layers`), whose calls one call over all steps interleaves otherwise.

        Raises:
            ValueError: a layer's calls are not the batch's time steps (an input not time-first, more or fewer
                steps than ``steps``), naming the layer; or the block is entered with calls not yet stepped.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"HLOP.one_batch: steps must be a whole number >= 1, got {steps!r}")
        if self._pending:
            raise ValueError("HLOP.one_batch: forward calls were collected since the last step(); call hlop.step() "
                             "before the block")
        per_step = self.per_step_layers()
        if per_step:
            raise ValueError(f"HLOP.one_batch: layers {per_step} run once per time step inside their layer's own "
                             "loop; run the batch in one call")
        self._batch_steps = steps
        try:
            yield
        except BaseException:
            self._pending.clear()  # (a batch cut short learns nothing: its sample would be part drawn, part empty)
            raise
        finally:
            self._batch_steps = None
        for name, drawn in self._pending.items():
            if drawn.seen != drawn.total:
                self._pending.clear()
                raise ValueError(f"HLOP.one_batch: layer {name!r} gave {drawn.seen} presynaptic vectors of the "
                                 f"{drawn.total} that {steps} time steps give: the calls must cover the batch's steps")
            drawn.total = drawn.plan = None  # (a uniform sample of the batch, as one call leaves it)

    def per_step_layers(self) -> list[str]:
        """The protected layers called once per time step inside another layer's loop: a dense recurrent layer's
        feedback ``.recurrent`` (:class:`neurosim.nn.RLIF`)."""
        feedback = {id(m.recurrent) for m in self.model.modules()
                    if isinstance(getattr(m, "recurrent", None), nn.Module)}
        return [name for name, m in self.layers if id(m) in feedback]

    def _merge(self, drawn: "_Drawn", module: nn.Module, x: torch.Tensor, seen: int,
               index: torch.Tensor | None) -> None:
        """Fold a later forward call's ``seen`` vectors (``index``: the rows its own draw picked; None: all) into
        the batch's sample of ``max_samples`` (a reservoir): afterwards the sample is a uniform random subset of all
        ``drawn.seen + seen`` vectors of the batch's calls so far, every vector kept with the same chance
        ``max_samples / total``.

        Every vector of the batch has an independent uniform key and the sample holds the ``max_samples`` with the
        smallest keys. A draw (``randperm``) already holds its call's smallest-key vectors, so only the keys of
        drawn vectors are made: the ``m`` smallest of ``n`` uniforms (:func:`_smallest_uniform_keys`) in the
        draw's random order, or ``n`` plain uniforms where all ``n`` are kept in order. The call's winners
        overwrite the losers in place, and only they are gathered from ``x``.
        """
        g, limit = self.generator, self.max_samples
        if drawn.keys is None:  # the first time the batch's vectors outnumber max_samples: a buffer of limit rows
            base = drawn.parts[0] if len(drawn.parts) == 1 else torch.cat(drawn.parts)
            kept = base.shape[0]
            keys = (_smallest_uniform_keys(drawn.seen, kept, g) if kept < drawn.seen
                    else torch.rand(kept, generator=g, dtype=torch.float64))
            if kept < limit:  # free slots: key +inf, the first to go
                base = torch.cat([base, base.new_zeros(limit - kept, base.shape[1])])
                keys = torch.cat([keys, torch.full((limit - kept,), float("inf"), dtype=torch.float64)])
            drawn.parts, drawn.keys = [base], keys
        if index is None:
            index = torch.arange(seen)
            new_keys = torch.rand(seen, generator=g, dtype=torch.float64)
        else:
            new_keys = _smallest_uniform_keys(seen, index.shape[0], g)
        keep = torch.topk(torch.cat([drawn.keys, new_keys]), limit, largest=False, sorted=False).indices
        winners = keep[keep >= limit] - limit
        if winners.numel():
            losers = torch.ones(limit, dtype=torch.bool)
            losers[keep[keep < limit]] = False
            slots = losers.nonzero().squeeze(1)
            buffer = drawn.parts[0]
            buffer[slots.to(buffer.device)] = presynaptic_vectors(module, x, index[winners]).to(buffer.dtype)
            drawn.keys[slots] = new_keys[winners]

    @torch.no_grad()
    def step(self) -> None:
        """The Hebbian update: Oja iterations on the presynaptic vectors every protected layer received since the
        last step (one batch, however many forward calls it took). Call it once per batch, after the backward."""
        for name in list(self._pending):
            self._update(name)

    def _update(self, name: str) -> None:
        drawn = self._pending.pop(name, None)
        if drawn is None:
            return
        vecs = drawn.parts[0] if len(drawn.parts) == 1 else torch.cat(drawn.parts)
        sub = self.subspaces[name]
        if sub.weight.device != vecs.device:
            sub.to(vecs.device)
        try:
            sub.update(vecs)
        except FloatingPointError as e:  # which layer's rate to lower (hlop.lr: one per protected layer)
            names = [n for n, _ in self.layers]
            raise FloatingPointError(f"HLOP layer {name!r} (protected layer {names.index(name) + 1} of {len(names)}, "
                                     f"task {self.tasks_done}): {e}") from None

    # ------------------------------------------------------------------ task protocol
    def begin_task(self, sizes: Sequence[int] | int) -> None:
        """Start a task: add ``sizes[i]`` learning rows to layer ``i``'s subspace, turn projection (onto the
        complement of the frozen rows) and Hebbian learning on."""
        sizes = [int(sizes)] * len(self.layers) if isinstance(sizes, int) else list(sizes)
        if len(sizes) != len(self.layers):
            raise ValueError(f"subspace sizes {sizes}: expected one per protected layer "
                             f"{[n for n, _ in self.layers]}")
        self._pending.clear()
        for (name, _), k in zip(self.layers, sizes):
            sub = self.subspaces[name]
            try:
                sub.add_rows(k, generator=self.generator)
            except ValueError as e:
                raise ValueError(f"HLOP layer {name!r}, task {self.tasks_done}: {e}") from None
        self._bases = {name: self._basis(sub) for name, sub in self.subspaces.items()}
        self.projecting = True
        self.hebbian = True

    def end_task(self) -> None:
        """End a task: a last :meth:`step` on what is still collected, then merge the learnt rows into the
        protected subspace; Hebbian learning off."""
        self.step()
        for sub in self.subspaces.values():
            sub.merge()
        self.hebbian = False
        self.projecting = False
        self.tasks_done += 1

    def _basis(self, sub: HebbianSubspace) -> torch.Tensor:
        old = sub.frozen.detach().clone()
        return _orthonormal_rows(old) if self.orthonormalize else old

    @contextmanager
    def hebbian_only(self) -> Iterator[None]:
        """Within the block every forward pass teaches the learning Hebbian rows (call :meth:`step` per batch; the
        block's end steps once more), in eval mode too — e.g. extra
        passes over a task's data after training it, with the model in eval mode so that the rows learn the
        activity the task is evaluated with (no dropout, BatchNorm running statistics); nothing else changes."""
        before = self.hebbian, self._hebbian_in_eval
        self.hebbian = self._hebbian_in_eval = True
        try:
            yield
            self.step()  # what the block's last passes collected
        finally:
            self.hebbian, self._hebbian_in_eval = before

    def subspace_dims(self) -> dict[str, int]:
        """Rows per protected layer (frozen + learning)."""
        return {name: sub.num_rows for name, sub in self.subspaces.items()}

    def remove(self) -> None:
        """Remove the hooks: the model trains as if HLOP had never been attached."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._pending.clear()
        self.projecting = self.hebbian = False

    _STATE_KEYS = ("tasks_done", "projecting", "hebbian", "generator", "subspaces")

    def state_dict(self) -> dict:
        """HLOP's state: ``{"tasks_done", "projecting", "hebbian", "generator": the generator's state,
        "subspaces": {layer name: HebbianSubspace.state_dict()}}`` (copies). Activity collected since the last
        :meth:`step` is not part of it: save after the step (a warning says when some is left)."""
        if self._pending:
            warnings.warn("HLOP.state_dict(): the presynaptic activity collected since the last step() is not saved; "
                          "call hlop.step() before saving (as after every batch)", RuntimeWarning, stacklevel=2)
        return {"tasks_done": self.tasks_done, "projecting": self.projecting, "hebbian": self.hebbian,
                "generator": self.generator.get_state(),
                "subspaces": {n: s.state_dict() for n, s in self.subspaces.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict` (of this HLOP, or of one built with the same arguments on a model of the same
        layout): after it this HLOP projects gradients and learns exactly as the saved one would have. Tensors are
        moved to this HLOP's device and dtype; anything collected since the last :meth:`step` is dropped.

        Raises:
            TypeError: ``state`` is not a mapping.
            ValueError: ``state`` has another layout: other keys, other protected layers, subspaces of another size,
                or values of the wrong kind (the message names them). Nothing is changed then.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"HLOP.load_state_dict needs the dict that HLOP.state_dict() returns, got "
                            f"{type(state).__name__}")
        _check_keys(state, self._STATE_KEYS, "HLOP state dict",
                    " (a HebbianSubspace's state loads into hlop.subspaces[name])" if "weight" in state else "")
        saved, mine = list(state["subspaces"]), [name for name, _ in self.layers]
        if sorted(saved) != sorted(mine):
            raise ValueError(f"the HLOP state dict protects layers {saved}, this HLOP protects {mine}: build HLOP "
                             f"with layers={saved} on a model of the same layout as the one saved")
        tasks_done = state["tasks_done"]
        if isinstance(tasks_done, bool) or not isinstance(tasks_done, int) or tasks_done < 0:
            raise ValueError(f"HLOP state dict: tasks_done must be an integer >= 0, got {tasks_done!r}")
        for key in ("projecting", "hebbian"):
            if not isinstance(state[key], bool):
                raise ValueError(f"HLOP state dict: {key} must be True or False, got {state[key]!r}")
        try:
            torch.Generator().set_state(torch.as_tensor(state["generator"]).cpu())
        except (RuntimeError, TypeError, ValueError) as e:
            raise ValueError(f"HLOP state dict: 'generator' is not a torch.Generator state ({e})") from None
        # every layer checked (HebbianSubspace.checked_state) before any changes
        loaded = {name: self.subspaces[name].checked_state(state["subspaces"][name], f"HLOP state dict, layer {name!r}")
                  for name in mine}
        # all checked: now change the state
        for name, entry in loaded.items():
            self.subspaces[name].load_state_dict(entry)
        self.generator.set_state(torch.as_tensor(state["generator"]).cpu())
        self.tasks_done, self.projecting, self.hebbian = tasks_done, state["projecting"], state["hebbian"]
        self._pending.clear()
        self._bases = {name: self._basis(sub) for name, sub in self.subspaces.items()}  # as begin_task made them

    def __repr__(self) -> str:
        dims = ", ".join(f"{n}: {s.num_rows}/{s.in_features}" for n, s in self.subspaces.items())
        return f"HLOP(tasks_done={self.tasks_done}, rows {{{dims}}})"
