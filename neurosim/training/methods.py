"""Training methods own how gradients flow through time; models never change between methods.

A method computes one batch's gradients: ``forward_backward(model, x_seq, y, loss) -> StepOutput``.
It accumulates into ``.grad`` (the Trainer zeroes gradients, clips, and steps the optimizer). ``model`` may be
wrapped in DistributedDataParallel (data-parallel runs): a method with several backward passes per batch runs all
but the last under :func:`neurosim.training.distributed.no_sync`. A method whose class sets
``takes_compact_input = True`` (BPTT, SLTT, SLTT-K) also takes integer frames (a FrameLoader's compact batch of
event counts, which the Trainer then gives it) and converts them to float32 where it runs them
(:func:`neurosim.nn.as_float`): SLTT and chunked BPTT a call's steps at a time, so that no float32 copy of all
``T`` steps is made where the model does not keep one for its backward pass. Any other method, such as one of
your own, gets float32 batches as before.
Register new methods with :func:`register_method`; SLTT and SLTT-K live in :mod:`neurosim.training.sltt`.

Every method needs the same of a model: ``forward(x_seq [T, B, ...], state=None) -> (out_seq [T, B, C], state)``
(:data:`MODEL_PROTOCOL`). A model that returns a bare tensor (snnTorch style), or whose forward takes no state where
a method calls it several times per batch, is a TypeError saying so (:func:`call_model`, :func:`model_output`).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

import torch

from neurosim.nn.layers import as_float, run_chunked
from neurosim.training.distributed import unwrap
from neurosim.training.losses import Loss
from neurosim.training.regularize import pending_penalty

__all__ = ["BPTT", "StepOutput", "TrainingMethod", "call_model", "configured_method", "get_method", "model_output",
           "register_method", "METHODS"]


@dataclass
class StepOutput:
    """What one batch produced: the loss value and the (detached) output sequence ``[T, B, C]``."""

    loss: float
    out_seq: torch.Tensor
    backward_passes: int = 1


def check_batch(x_seq: torch.Tensor, y: torch.Tensor, method: str) -> int:
    """``T`` of a training batch, after checking what every method needs: ``x_seq`` time-first ``[T, B, ...]``
    with ``T >= 1``, and one integer class target per sample, ``y`` of shape ``[B]``.

    Raises:
        ValueError: naming the method, the shapes received and expected; a ``y`` as long as ``x_seq``'s first
            dimension is read as a batch-first ``x_seq`` (a DataLoader's default collate stacks samples
            ``[T, ...]`` into ``[B, T, ...]``), which ``x_seq.transpose(0, 1)`` makes time-first; ``y`` on
            another device than ``x_seq``.
    """
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 3:
        shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"{method}: x_seq must be time-first [T, B, features...], got {shape}")
    if x_seq.shape[0] == 0 or x_seq.shape[1] == 0:
        empty = "time steps" if x_seq.shape[0] == 0 else "samples"
        raise ValueError(f"{method}: x_seq {tuple(x_seq.shape)} has no {empty}")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (x_seq.shape[1],) or y.is_floating_point():
        what = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        hint = ""
        if isinstance(y, torch.Tensor) and tuple(y.shape) == (x_seq.shape[0],):  # one target per row of dim 0
            hint = (f"; x_seq looks batch-first [B, T, ...] (its first dimension is y's {x_seq.shape[0]} samples) "
                    "but neurosim is time-first [T, B, ...]: pass x_seq.transpose(0, 1) (or, for a single time "
                    "step [B, ...], x_seq[None])")
        raise ValueError(f"{method}: y must hold one integer class per sample, shape [B] = ({x_seq.shape[1]},) "
                         f"for x_seq {tuple(x_seq.shape)}, got {what}{hint}")
    if y.device != x_seq.device:  # (else torch's "Expected all tensors to be on the same device" from the loss)
        raise ValueError(f"{method}: y is on {y.device} but x_seq is on {x_seq.device}: pass y.to(x_seq.device)")
    return x_seq.shape[0]


#: what every method needs of a model, said in the errors when a model does not do it
MODEL_PROTOCOL = ("forward(x_seq [T, B, ...], state=None) -> (out_seq [T, B, C], state): out_seq time-first with "
                  "x_seq's steps, state what a next call continues from (None if the model keeps none); an snnTorch "
                  "nn.Sequential of Leaky neurons converts to such a model with neurosim.interop.from_snntorch")


def _described(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_described(v) if isinstance(v, torch.Tensor) else type(v).__name__ for v in value[:3])
        return f"a {type(value).__name__} of {len(value)} ({inner}{', …' if len(value) > 3 else ''})"
    return f"a {type(value).__name__}"


def model_output(result: Any, model: torch.nn.Module, x_seq: torch.Tensor, method: str) -> tuple[torch.Tensor, Any]:
    """``(out_seq, state)`` of ``result = model(x_seq, ...)``, after checking that it is that pair.

    Raises:
        TypeError: naming ``method``, what the model returned and the protocol it must follow (a bare
            ``out_seq`` tensor, snnTorch style, would otherwise be unpacked along its time axis).
    """
    if (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[0], torch.Tensor)
            and result[0].dim() >= 1 and result[0].shape[0] == x_seq.shape[0]):
        return result[0], result[1]
    name = type(unwrap(model)).__name__
    raise TypeError(f"{method}: the model must return (out_seq [T, B, C], state) and accept state=None, but {name} "
                    f"returned {_described(result)} for x_seq {tuple(x_seq.shape)}; write its forward as "
                    f"{MODEL_PROTOCOL}")


def _takes_state(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` accepts ``(x_seq, state)`` (True where its signature cannot be read)."""
    try:
        inspect.signature(unwrap(model).forward).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin)
        return True
    return True


def call_model(model: torch.nn.Module, x_seq: torch.Tensor, state: Any, method: str) -> tuple[torch.Tensor, Any]:
    """``model(x_seq, state)`` as ``(out_seq, state)``, with an error naming the protocol (see
    :func:`model_output`) for a model that returns something else or takes no ``state`` argument."""
    try:
        result = model(x_seq, state)
    except TypeError:
        if _takes_state(model):
            raise  # a TypeError from inside the model's forward: its own
        name = type(unwrap(model)).__name__
        raise TypeError(f"{method}: the model must accept state=None and return (out_seq [T, B, C], state), but "
                        f"{name}.forward takes no state argument; {method} runs x_seq in several calls, each "
                        f"continuing from the state the last one returned. Write its forward as {MODEL_PROTOCOL}"
                        ) from None
    return model_output(result, model, x_seq, method)


class TrainingMethod(Protocol):
    name: str

    def forward_backward(self, model: torch.nn.Module, x_seq: torch.Tensor, y: torch.Tensor,
                         loss: Loss) -> StepOutput: ...


@dataclass
class BPTT:
    """Backpropagation through time: one forward over all ``T`` steps, one backward through the full graph.

    Memory grows linearly with ``T`` (every step's activations are kept for the backward pass). The forward runs
    in time chunks with the state carried (:func:`neurosim.nn.run_chunked`): the same graph and gradients as one
    call, faster on CPU because each layer's activations stay in cache.

    Args:
        time_chunk: time steps per forward call; None picks :func:`neurosim.nn.time_chunk` (no chunking on GPU or
            with BatchNorm in training mode).
    """

    time_chunk: int | None = None
    name: str = "bptt"
    takes_compact_input: ClassVar[bool] = True  # integer frames converted a chunk at a time (module docstring)

    def forward_backward(self, model, x_seq, y, loss):
        check_batch(x_seq, y, "BPTT")
        # (integer frames, a compact batch, made float32 a chunk at a time by run_chunked, else all at once)
        result = (run_chunked(model, x_seq, steps=self.time_chunk) if _is_sequential(model)
                  else model(as_float(x_seq)))
        out_seq, _ = model_output(result, model, x_seq, "BPTT")
        value = loss(out_seq, y)
        (value + pending_penalty(x_seq.shape[0])).backward()  # (an activity penalty, where the Trainer has one)
        return StepOutput(float(value.detach()), out_seq.detach())


def _is_sequential(model) -> bool:
    return getattr(unwrap(model), "stateful", False)


def _bptt(time_chunk: int | None = None) -> BPTT:
    """``bptt``'s factory (it takes no ``k``: the config's ``train.k`` reaches only methods that take one)."""
    return BPTT(time_chunk)


METHODS: dict[str, Callable[..., TrainingMethod]] = {"bptt": _bptt}


def register_method(name: str, factory: Callable[..., TrainingMethod]) -> None:
    """Make a method available by name to configs and the CLI (``factory(**options) -> method``).

    A config's method (the Trainer's, a continual run's: :func:`configured_method`) is built with
    ``factory(k=train.k, time_chunk=train.time_chunk)``, each of the two given where the factory's signature names it
    (or takes ``**options``): a factory takes those it uses. :func:`get_method` refuses an option that the factory's
    signature does not name, unless it takes ``**options``.
    """
    METHODS[name] = factory


def _check_options(name: str, factory: Callable[..., TrainingMethod], options: dict[str, Any]) -> None:
    """A TypeError naming an option ``factory`` does not take (a misspelt ``K=4`` was dropped, leaving the default)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for option in options:
        if option not in known:
            close = difflib.get_close_matches(option.lower(), known, n=1)
            others = [] if close else [m for m in sorted(METHODS) if m != name and option in _named_options(m)]
            hint = (f"; did you mean {close[0]}={options[option]!r}?" if close else
                    f"; did you mean get_method({others[0]!r}, {option}={options[option]!r})?" if others else "")
            raise TypeError(f"training method {name!r} takes no option {option!r}; its options: "
                            f"{', '.join(sorted(known)) or 'none'}{hint}")


def _named_options(name: str) -> tuple[str, ...]:
    """The options method ``name``'s factory names in its signature (none where it has no signature to read, or takes
    ``**options``: anything)."""
    try:
        params = inspect.signature(METHODS[name]).parameters
    except (TypeError, ValueError):
        return ()
    return tuple(n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def get_method(name: str, **options) -> TrainingMethod:
    """A training method by name (``bptt``, plus any registered, e.g. ``sltt``, ``sltt_k``).

    Raises:
        ValueError: an unknown method name.
        TypeError: an option the method does not take, naming the ones it does and a close one
            (``get_method("sltt_k", K=4)``: did you mean k=4?) or a method that takes it (``get_method("sltt", k=4)``,
            which draws no steps: did you mean ``get_method('sltt_k', k=4)``?).
    """
    factory = _factory(name)
    _check_options(name, factory, options)
    return factory(**options)


def _factory(name: str) -> Callable[..., TrainingMethod]:
    """Method ``name``'s registered factory (a ValueError naming those there are for an unknown name)."""
    if name not in METHODS:
        try:  # SLTT registers itself on import
            import neurosim.training.sltt  # noqa: F401
        except ImportError:
            pass
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; available: {sorted(METHODS)}")
    return METHODS[name]


def configured_method(train: Any) -> TrainingMethod:
    """The method of a config's ``[train]`` section (``train.method``, with ``train.k`` and ``train.time_chunk``), as
    the Trainer and a continual run build it: each of ``k`` and ``time_chunk`` goes to the method's factory where its
    signature names it or takes ``**options`` (a factory without a signature to read gets both), so ``train.k`` under
    ``bptt`` or ``sltt``, which take none, is no error here (``neurosim train`` warns of it:
    :func:`neurosim.config.ineffective_settings`); :func:`get_method` refuses it.

    Raises:
        ValueError: an unknown method name.
    """
    factory, given = _factory(train.method), {"k": train.k, "time_chunk": train.time_chunk}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: both, as before
        return factory(**given)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**given)
    return factory(**{k: v for k, v in given.items() if k in _named_options(train.method)})
