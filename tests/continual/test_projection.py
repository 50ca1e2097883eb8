"""HLOP's gradient projection: ΔW = δ (x − H_oldᵀ H_old x)ᵀ on Linear and Conv2d, with BPTT, SLTT and SLTT-K."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from neurosim.continual import HLOP, HebbianSubspace, freeze_non_weights, presynaptic_vectors
from neurosim.continual.hebbian import _orthonormal_rows
from neurosim.nn import LI, LIF, RLIF, BatchNorm1d, Conv2d, Flatten, Linear, Sequential
from neurosim.training import get_loss, get_method

T, B = 3, 8  # time steps, batch


def conv_net(seed: int = 0) -> Sequential:
    """Conv2d 2→4 k3 on 8×8 (patches of 18) → LIF → Linear 144→16 → LIF → Linear 16→3 → LI."""
    torch.manual_seed(seed)
    return Sequential(Conv2d(2, 4, 3, bias=False), LIF(beta=0.9, v_th=0.3), Flatten(),
                      Linear(144, 16, bias=False), LIF(beta=0.9, v_th=0.3), Linear(16, 3, bias=False), LI(0.9))


def batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    x_seq = (torch.rand(T, B, 2, 8, 8, generator=g) < 0.4).float()  # spikes [T, B, C, H, W]
    return x_seq, torch.randint(0, 3, (B,), generator=g)


def weight_grads(net, method: str, x_seq, y) -> dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    loss = get_loss("rate_ce" if method == "bptt" else "tet")
    m = get_method(method, k=2, generator=torch.Generator().manual_seed(0)) if method == "sltt_k" else get_method(method)
    m.forward_backward(net, x_seq, y, loss)
    return {name: mod.weight.grad.reshape(mod.weight.shape[0], -1).clone()
            for name, mod in net.named_modules() if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d))}


def learn_task0(hlop: HLOP, net, sizes=(6, 20, 6), passes: int = 40) -> None:
    """Task 0: new rows learn from forward passes in training mode (the hooks), then merge."""
    hlop.begin_task(list(sizes))
    net.train()
    with torch.no_grad():
        for i in range(passes):
            net(batch(100 + i % 10)[0])
            hlop.step()
    hlop.end_task()


@pytest.mark.parametrize("method", ["bptt", "sltt", "sltt_k"])
@pytest.mark.parametrize("orthonormalize", [True, False], ids=["orthonormal-basis", "paper-H"])
def test_projected_gradient_has_no_component_in_the_old_subspace(method, orthonormalize):
    net = conv_net()
    hlop = HLOP(net, lr=0.05, iterations=5, orthonormalize=orthonormalize, seed=0)
    learn_task0(hlop, net)
    x_seq, y = batch(1)
    hlop.projecting = False
    raw = weight_grads(net, method, x_seq, y)  # the same batch's gradient without projection
    hlop.begin_task([2, 4, 2])  # task 1: project onto the complement of task 0's rows
    projected = weight_grads(net, method, x_seq, y)
    assert set(projected) == {"0", "3", "5"}  # the conv layer, the hidden and the output Linear
    for name, g in projected.items():
        h_old = hlop.subspaces[name].frozen
        q = _orthonormal_rows(h_old.double())  # orthonormal basis of span(H_old)
        assert q.shape[0] == h_old.shape[0]
        assert float((raw[name].double() @ q.T).norm() / raw[name].norm()) > 0.2  # there was something to remove
        ratio = float((g.double() @ q.T).norm() / g.norm())
        # Exact projector: round-off. The paper's I − H_oldᵀH_old: what is left is G Qᵀ (I − AᵀA) with H_old = A Q,
        # so at most ‖H_old H_oldᵀ − I‖₂ of it — as far as Oja made the rows orthonormal (small: checked).
        hh = h_old.double() @ h_old.double().T
        off = float(torch.linalg.matrix_norm(hh - torch.eye(len(hh), dtype=torch.float64), ord=2))
        assert off < 0.1
        assert ratio < (1e-5 if orthonormalize else off + 1e-6), (name, ratio, off)
        # and the projection is the fixed linear map ΔW ↦ ΔW (I − PᵀP) with P the basis used
        p = (q if orthonormalize else h_old.double())
        assert torch.allclose(g.double(), raw[name].double() - raw[name].double() @ p.T @ p, atol=1e-5)


def test_linear_gradient_is_delta_times_projected_presynaptic_input():
    # ΔW = Σ_{t,b} δ (x − Hᵀ H x)ᵀ exactly, for any H (here a random, non-orthonormal one, as the paper uses H itself)
    torch.manual_seed(0)
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8, v_th=0.2))
    hlop = HLOP(net, lr=0.01)
    hlop.begin_task([2])
    hlop.end_task()
    h = 0.7 * torch.randn(2, 6)
    hlop.subspaces["0"].weight = h.clone()
    hlop.begin_task([0])
    seen = {}

    def keep(module, args, out):
        out.retain_grad()
        seen["x"], seen["out"] = args[0], out

    net[0].register_forward_hook(keep)
    x_seq = torch.rand(T, B, 6)
    out, _ = net(x_seq)
    out.sum().backward()
    delta = seen["out"].grad.reshape(-1, 4)  # δ = ∂L/∂(W x), every step and sample
    x = seen["x"].reshape(-1, 6)
    expected = delta.T @ (x - x @ h.T @ h)
    assert torch.allclose(net[0].weight.grad, expected, atol=1e-5)


def test_conv_gradient_is_delta_times_projected_unfolded_patches():
    torch.manual_seed(0)
    conv = Conv2d(2, 3, 3, padding=1, stride=2, bias=False)
    net = Sequential(conv, LIF(beta=0.8, v_th=0.2))
    hlop = HLOP(net, lr=0.01)
    hlop.begin_task([4])
    hlop.end_task()
    h = torch.linalg.qr(torch.randn(18, 4)).Q.T
    hlop.subspaces["0"].weight = h.clone()
    hlop.begin_task([0])
    seen = {}

    def keep(module, args, out):
        out.retain_grad()
        seen["out"] = out

    conv.register_forward_hook(keep)
    x_seq = torch.rand(T, B, 2, 7, 7)
    out, _ = net(x_seq)
    out.pow(2).sum().backward()
    delta = seen["out"].grad.reshape(T * B, 3, -1)  # [T·B, out, L]
    patches = F.unfold(x_seq.reshape(T * B, 2, 7, 7), 3, padding=1, stride=2)  # [T·B, 18, L]
    projected = patches - torch.einsum("kn,km,bml->bnl", h, h, patches)  # x − Hᵀ H x for every patch
    expected = torch.einsum("bol,bnl->on", delta, projected)
    assert torch.allclose(conv.weight.grad.reshape(3, -1), expected, atol=1e-4)


def test_presynaptic_vectors_are_what_the_weight_multiplies():
    torch.manual_seed(0)
    conv = Conv2d(2, 3, 3, padding=1, bias=False)
    x_seq = torch.rand(T, B, 2, 5, 5)
    vecs = presynaptic_vectors(conv, x_seq)  # [T·B·L, 18]
    out = conv(x_seq).reshape(T * B, 3, -1).transpose(1, 2).reshape(-1, 3)  # [T·B·L, out]
    assert vecs.shape == (T * B * 25, 18)
    assert torch.allclose(vecs @ conv.weight.reshape(3, -1).T, out, atol=1e-5)
    lin = Linear(7, 2)
    assert presynaptic_vectors(lin, torch.rand(T, B, 7)).shape == (T * B, 7)


def test_hebbian_rows_learn_from_every_time_step_of_the_forward_pass():
    torch.manual_seed(0)
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8))
    hlop = HLOP(net, lr=0.05, max_samples=None, seed=3)
    hlop.begin_task([2])
    twin = HebbianSubspace(6, lr=0.05)
    twin.load_state_dict(hlop.subspaces["0"].state_dict())
    x_seq = torch.rand(T, B, 6)
    net.train()
    net(x_seq)
    assert torch.equal(hlop.subspaces["0"].weight, twin.weight)  # collected; learnt at the step
    hlop.step()
    twin.update(x_seq.reshape(-1, 6))  # all T·B presynaptic vectors, 5 iterations
    assert torch.allclose(hlop.subspaces["0"].weight, twin.weight)
    net.eval()  # evaluation passes teach nothing
    before = hlop.subspaces["0"].weight.clone()
    net(x_seq)
    hlop.step()
    assert torch.equal(hlop.subspaces["0"].weight, before)
    with hlop.hebbian_only():  # …except inside hebbian_only (extra Hebbian passes after a task)
        net(x_seq)
    assert not torch.equal(hlop.subspaces["0"].weight, before)


def _hebbian_batches(method, max_samples, steps=3):
    """The rows a fresh conv net's HLOP learns from ``steps`` batches trained with ``method`` (no optimizer step:
    every method sees the same activity), and the number of vectors each Hebbian update used, per layer."""
    net = conv_net()
    hlop = HLOP(net, lr=0.05, max_samples=max_samples, seed=3)
    used = {name: [] for name in hlop.subspaces}
    for name, sub in hlop.subspaces.items():
        update = sub.update
        sub.update = lambda x, name=name, update=update: (used[name].append(x.shape[0]), update(x))[1]
    hlop.begin_task([3, 4, 2])
    net.train()
    for i in range(steps):
        net.zero_grad()
        x_seq, y = batch(i)
        method.forward_backward(net, x_seq, y, get_loss("tet"))
        hlop.step()
    return {n: sub.weight.clone() for n, sub in hlop.subspaces.items()}, used


def test_a_batch_is_one_hebbian_update_however_the_method_splits_it_into_calls():
    """BPTT in one call (a GPU), in chunks (CPU), SLTT step by step: the same rows learnt (float rounding apart)."""
    whole, used = _hebbian_batches(get_method("bptt", time_chunk=T), None)
    assert used == {"0": [T * B * 36] * 3, "3": [T * B] * 3, "5": [T * B] * 3}  # conv: 6×6 positions
    for method in (get_method("bptt", time_chunk=1), get_method("sltt", time_chunk=1)):
        rows, used = _hebbian_batches(method, None)  # three forward calls per batch
        assert used == {"0": [T * B * 36] * 3, "3": [T * B] * 3, "5": [T * B] * 3}
        for layer, weight in whole.items():
            torch.testing.assert_close(rows[layer], weight, rtol=0, atol=1e-5)
    _, used = _hebbian_batches(get_method("bptt", time_chunk=1), 200)  # each call's share of the 200 drawn
    assert used == {"0": [200] * 3, "3": [T * B] * 3, "5": [T * B] * 3}


def test_forgetting_to_step_warns_and_keeps_memory_bounded(monkeypatch):
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8))
    hlop = HLOP(net, lr=0.05)
    monkeypatch.setattr(HLOP, "MAX_PENDING_CALLS", 3)
    hlop.begin_task([2])
    net.train()
    before = hlop.subspaces["0"].weight.clone()
    with pytest.warns(RuntimeWarning, match=r"without a step\(\); call hlop.step\(\) once per batch"):
        for _ in range(3):
            net(torch.rand(T, B, 6))
    assert not hlop._pending and not torch.equal(hlop.subspaces["0"].weight, before)


def _held_rows(value) -> int:
    """Rows of the presynaptic vectors an HLOP holds between steps (whatever structure holds them)."""
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.dim() == 2 else 0  # (1-d tensors: sampling keys, not vectors)
    if isinstance(value, (list, tuple)):
        return sum(_held_rows(v) for v in value)
    if isinstance(value, dict):
        return sum(_held_rows(v) for v in value.values())
    return _held_rows(vars(value)) if hasattr(value, "__dict__") else 0


def test_sltt_step_by_step_holds_at_most_max_samples_per_layer_whatever_t():
    """SLTT runs one step per forward call: the calls' vectors are sampled as they arrive, not kept per call until
    the step (which held T·max_samples per conv layer: memory growing with T, which SLTT exists to avoid)."""
    net = conv_net()
    hlop = HLOP(net, lr=0.05, max_samples=50, seed=3)
    used = []
    update = hlop.subspaces["0"].update
    hlop.subspaces["0"].update = lambda x: (used.append(x.shape[0]), update(x))[1]
    hlop.begin_task([3, 4, 2])
    net.train()
    held = []
    net[0].register_forward_hook(lambda *_: held.append(_held_rows(hlop._pending["0"])))
    x_seq = (torch.rand(12, B, 2, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    get_method("sltt", time_chunk=1).forward_backward(net, x_seq, torch.zeros(B, dtype=torch.long), get_loss("tet"))
    assert len(held) == 12 and max(held) == 50  # B·36 = 288 patches per call, 50 kept
    hlop.step()
    assert used == [50]


def test_sampled_vectors_are_a_uniform_draw_from_the_whole_batch_however_it_is_split():
    """Every vector of a batch is in the sample with chance max_samples / total, and every pair with the chance
    of a uniform draw without replacement, M(M−1)/(N(N−1)), whether the pair came in one forward call or two —
    for calls of unequal size (3, 15, 6 and 12 vectors here: a draw of 7 from 36)."""
    net = Sequential(Linear(2, 1, bias=False))
    hlop = HLOP(net, lr=0.05, max_samples=7, seed=0)
    hlop.begin_task([1])
    samples = []
    hlop.subspaces["0"].update = lambda x: samples.append(x[:, 0].long())
    reps, start = 1500, 0
    for _ in range(reps):
        start = 0
        for steps in (1, 5, 2, 4):  # B = 3: vector i has x[0] = i
            ids = torch.arange(start, start + 3 * steps, dtype=torch.float32).reshape(steps, 3)
            net(torch.stack([ids, torch.ones_like(ids)], -1))
            start += 3 * steps
        hlop.step()
    N, M = start, 7
    inside = torch.zeros(reps, N)
    for r, ids in enumerate(samples):
        assert len(set(ids.tolist())) == M  # no vector twice
        inside[r, ids] = 1
    assert (inside.mean(0) - M / N).abs().max() < 0.045  # each ≈ 0.194 (± 0.010 sd)
    pairs = inside.T @ inside / reps  # [N, N]: how often i and j were both drawn
    call = torch.repeat_interleave(torch.arange(4), torch.tensor([3, 15, 6, 12]))
    same = call[:, None] == call[None, :]
    off = ~torch.eye(N, dtype=torch.bool)
    for which in (same & off, ~same):
        assert abs(float(pairs[which].mean()) - M * (M - 1) / (N * (N - 1))) < 0.003  # 0.0333


def test_one_call_per_batch_draws_exactly_as_before():
    """BPTT in one call: the sample is presynaptic_vectors(x)[randperm(seen)[:max_samples]] from HLOP's generator,
    the draw HLOP has always made (results of earlier runs are reproduced bit for bit)."""
    net = conv_net()
    hlop = HLOP(net, layers=["0"], lr=0.05, max_samples=100, seed=3)
    hlop.begin_task([3])
    got = []
    hlop.subspaces["0"].update = lambda x: got.append(x.clone())
    twin = torch.Generator()
    twin.set_state(hlop.generator.get_state())
    net.train()
    x_seq = batch(0)[0]
    net(x_seq)
    hlop.step()
    full = presynaptic_vectors(net[0], x_seq)
    assert torch.equal(got[0], full[torch.randperm(full.shape[0], generator=twin)[:100]])


@pytest.mark.parametrize("max_samples", [50, 5000, None], ids=["drawn", "all-kept", "no-limit"])
def test_a_batch_run_a_chunk_at_a_time_in_one_batch_learns_what_one_call_learns_bit_for_bit(max_samples):
    """HLOP.one_batch: the conv layer's 12·8·36 patches and the Linear layers' 96 vectors drawn (50) or all kept, as
    one call over the 12 steps gives them, from compact counts run in chunks of 5, 5 and 2 steps."""
    from neurosim.nn import run_chunked

    counts = torch.randint(0, 3, (12, B, 2, 8, 8), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    learnt = []
    for chunked in (False, True):
        net = conv_net()
        hlop = HLOP(net, lr=0.05, max_samples=max_samples, seed=3)
        hlop.begin_task([3, 4, 2])
        got = {}
        for name, sub in hlop.subspaces.items():
            sub.update = lambda x, name=name, update=sub.update: (got.setdefault(name, x.clone()), update(x))[1]
        net.eval()
        with torch.no_grad(), hlop.hebbian_only():
            if chunked:
                with hlop.one_batch(12):
                    run_chunked(net, counts, steps=5)
            else:
                net(counts.float())
        learnt.append((got, {name: sub.weight.clone() for name, sub in hlop.subspaces.items()},
                       hlop.generator.get_state()))
    (one, w_one, g_one), (chunks, w_chunks, g_chunks) = learnt
    assert one.keys() == chunks.keys() == {"0", "3", "5"}
    assert [one[k].shape[0] for k in "035"] == ([50] * 3 if max_samples == 50 else [12 * B * 36, 12 * B, 12 * B])
    assert all(torch.equal(one[k], chunks[k]) for k in one)  # the same vectors, in the same order
    assert all(torch.equal(w_one[k], w_chunks[k]) for k in w_one) and torch.equal(g_one, g_chunks)


def test_one_batch_refuses_calls_that_are_not_the_batchs_steps():
    net = conv_net()
    hlop = HLOP(net, lr=0.05, max_samples=50, seed=3)
    hlop.begin_task([3, 4, 2])
    net.eval()
    x_seq = batch(0)[0]
    with torch.no_grad(), hlop.hebbian_only():
        with pytest.raises(ValueError, match=r"layer '0' gave 864 presynaptic vectors of the 1728 that 6 time steps"):
            with hlop.one_batch(2 * T):
                net(x_seq)  # 3 of the 6 steps announced
        with pytest.raises(ValueError, match=r"layer '0' gave 1728 presynaptic vectors, more than the 864 of 3 time"):
            with hlop.one_batch(T):
                net(x_seq)
                net(x_seq)
        assert not hlop._pending  # (a batch cut short learns nothing)
        with pytest.raises(ValueError, match=r"steps must be a whole number >= 1, got 0"):
            with hlop.one_batch(0):
                pass
        net(x_seq)
        with pytest.raises(ValueError, match=r"call hlop.step\(\) before the block"):
            with hlop.one_batch(T):
                pass
    rnn = Sequential(Flatten(), RLIF(128, 6), Linear(6, 3, bias=False))
    with pytest.raises(ValueError, match=r"layers \['1.recurrent'\] run once per time step"):
        with HLOP(rnn, lr=0.05).one_batch(T):
            pass


@pytest.mark.parametrize("conv", [dict(kernel_size=3), dict(kernel_size=3, padding=1),
                                  dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
                                  dict(kernel_size=1), dict(kernel_size=5, stride=3, padding=2)],
                         ids=["k3", "k3-pad1", "rect-stride-pad-dilation", "k1", "k5-stride3-pad2"])
@pytest.mark.parametrize("shape", [(3, 2, 4, 9, 11), (5, 4, 7, 6)], ids=["TBCHW", "BCHW"])
def test_presynaptic_vectors_of_some_rows_equal_those_rows_of_the_full_matrix(conv, shape):
    from neurosim.continual.projection import presynaptic_count

    g = torch.Generator().manual_seed(0)
    layer = Conv2d(4, 3, **conv)
    x = torch.randn(*shape, generator=g)
    full = presynaptic_vectors(layer, x)
    assert presynaptic_count(layer, x) == full.shape[0]
    index = torch.randperm(full.shape[0], generator=g)[:50]
    assert torch.equal(presynaptic_vectors(layer, x, index), full[index])
    lin = Linear(shape[-1], 2)
    rows = torch.randperm(x.numel() // shape[-1], generator=g)[:20]
    assert torch.equal(presynaptic_vectors(lin, x, rows), x.reshape(-1, shape[-1])[rows])


def test_sampled_conv_patches_are_gathered_without_unfolding_the_input(monkeypatch):
    """A conv layer's full patch matrix is kh·kw times its input (620 MB for one DVS-gesture batch): only the
    drawn patches are made."""
    net = conv_net()
    hlop = HLOP(net, lr=0.05, max_samples=100, seed=3)
    hlop.begin_task([3, 4, 2])
    net.train()

    def no_unfold(*args, **kwargs):
        raise AssertionError("the full patch matrix was made")

    monkeypatch.setattr(F, "unfold", no_unfold)
    for method in ("bptt", "sltt"):
        get_method(method, time_chunk=1 if method == "sltt" else None).forward_backward(
            net, batch(0)[0], batch(0)[1], get_loss("tet"))
        hlop.step()


def test_forward_pass_is_unchanged_and_remove_restores_plain_gradients():
    net = conv_net()
    x_seq, y = batch(0)
    with torch.no_grad():
        plain, _ = net(x_seq)
    hlop = HLOP(net, lr=0.05, orthonormalize=True)
    learn_task0(hlop, net, passes=3)
    hlop.begin_task([1, 1, 1])
    net.eval()
    with torch.no_grad():
        hooked, _ = net(x_seq)
    assert torch.equal(plain, hooked)
    projected = weight_grads(net, "bptt", x_seq, y)
    hlop.remove()
    free = weight_grads(net, "bptt", x_seq, y)
    assert not torch.allclose(projected["3"], free["3"])


def test_freeze_non_weights_freezes_biases_batchnorm_and_thresholds():
    net = Sequential(Linear(4, 5), BatchNorm1d(5), LIF(beta=0.9, learn_threshold=True), Linear(5, 2))
    net.train()
    frozen = freeze_non_weights(net)
    assert frozen == ["0.bias", "1.weight", "1.bias", "2.v_th_param", "3.bias"]  # BN affine is 1-d too
    assert all(not p.requires_grad for p in net.parameters() if p.dim() < 2)
    assert net[0].weight.requires_grad and net[3].weight.requires_grad
    assert not net[1].training  # BatchNorm statistics fixed


def test_hlop_errors_name_the_problem():
    net = conv_net()
    with pytest.raises(ValueError, match=r"\['9'\] are not Linear/Conv2d layers of the model; available: \['0', '3', '5'\]"):
        HLOP(net, layers=["9"])
    with pytest.raises(ValueError, match="no Linear or Conv2d layer"):
        HLOP(Sequential(LIF(beta=0.9)))
    with pytest.raises(ValueError, match="2 values for 3 protected layers"):
        HLOP(net, lr=[0.1, 0.1])
    hlop = HLOP(net)
    with pytest.raises(ValueError, match="expected one per protected layer"):
        hlop.begin_task([1, 2])
    with pytest.raises(ValueError, match=r"HLOP layer '0', task 0: cannot add 19 subspace rows"):
        hlop.begin_task([19, 1, 1])  # the conv layer's patches have 18 entries
    with pytest.raises(ValueError, match="groups = 1 only"):
        presynaptic_vectors(torch.nn.Conv2d(2, 2, 3, groups=2), torch.rand(1, 2, 5, 5))


def _train(net, hlop: HLOP, optimizer, seeds, method: str = "sltt") -> None:
    """One optimizer step and one Hebbian step per batch, as a user's continual-learning loop does."""
    net.train()
    for seed in seeds:
        x_seq, y = batch(seed)
        optimizer.zero_grad()
        get_method(method).forward_backward(net, x_seq, y, get_loss("tet"))
        optimizer.step()
        hlop.step()


def _checkpoint_round_trip(net, hlop: HLOP) -> tuple[Sequential, HLOP]:
    """torch.save the model's and HLOP's states, torch.load them into a fresh model (other initial weights) and an
    HLOP built with the same arguments but another seed: whatever the state holds must come from the checkpoint."""
    import io

    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "hlop": hlop.state_dict()}, buffer)
    buffer.seek(0)
    ckpt = torch.load(buffer)
    twin = conv_net(seed=7)
    twin.load_state_dict(ckpt["model"])
    restored = HLOP(twin, lr=0.05, max_samples=100, seed=99)
    restored.load_state_dict(ckpt["hlop"])
    return twin, restored


@pytest.mark.parametrize("when", ["between tasks", "inside a task"])
def test_a_restored_hlop_projects_and_learns_exactly_as_the_original(when):
    net = conv_net()
    hlop = HLOP(net, lr=0.05, max_samples=100, seed=1)  # max_samples: the generator also draws the conv's samples
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)  # no optimizer state to carry
    hlop.begin_task([3, 4, 2])
    _train(net, hlop, optimizer, range(3))
    hlop.end_task()
    if when == "inside a task":
        hlop.begin_task([2, 3, 1])
        _train(net, hlop, optimizer, range(3, 5))
    twin, restored = _checkpoint_round_trip(net, hlop)
    assert repr(restored) == repr(hlop) and (restored.projecting, restored.hebbian) == (hlop.projecting, hlop.hebbian)
    if when == "between tasks":
        hlop.begin_task([2, 3, 1])  # the new rows are drawn from the generator: the restored one must draw the same
        restored.begin_task([2, 3, 1])
    x_seq, y = batch(10)
    for method in ("bptt", "sltt"):
        original, again = weight_grads(net, method, x_seq, y), weight_grads(twin, method, x_seq, y)
        for name in original:
            assert torch.equal(original[name], again[name]), (method, name)
    _train(net, hlop, optimizer, range(11, 13))
    _train(twin, restored, torch.optim.SGD(twin.parameters(), lr=0.1), range(11, 13))
    for h in (hlop, restored):
        h.end_task()
        h.begin_task([1, 1, 1])
    _train(net, hlop, optimizer, [13])
    _train(twin, restored, torch.optim.SGD(twin.parameters(), lr=0.1), [13])
    assert hlop.tasks_done == restored.tasks_done == 2
    for name, sub in hlop.subspaces.items():
        other = restored.subspaces[name]
        assert torch.equal(sub.weight, other.weight) and torch.equal(sub.velocity, other.velocity), name
        assert sub.num_frozen == other.num_frozen
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        assert torch.equal(p, q), name


def test_load_state_dict_refuses_a_state_of_another_layout_and_changes_nothing():
    net = conv_net()
    hlop = HLOP(net, lr=0.05, seed=1)
    learn_task0(hlop, net, passes=2)
    state = hlop.state_dict()
    target = HLOP(conv_net(), lr=0.05, seed=2)
    learn_task0(target, target.model, sizes=(1, 1, 1), passes=1)
    before = target.state_dict()

    def refused(bad, error=ValueError, match=""):
        with pytest.raises(error, match=match):
            target.load_state_dict(bad)
        after = target.state_dict()
        assert repr(target) == "HLOP(tasks_done=1, rows {0: 1/18, 3: 1/144, 5: 1/16})"  # untouched
        for name, sub in after["subspaces"].items():
            assert torch.equal(sub["weight"], before["subspaces"][name]["weight"])
        assert torch.equal(after["generator"], before["generator"])

    refused([state], TypeError, "needs the dict that HLOP.state_dict")
    old = {"tasks_done": 1, "subspaces": state["subspaces"]}  # what state_dict() returned before it had the rest
    refused(old, match=r"missing \['projecting', 'hebbian', 'generator'\]")
    refused(state["subspaces"]["3"], match=r"a HebbianSubspace's state loads into hlop.subspaces\[name\]")
    refused(HLOP(conv_net(), layers=["3", "5"]).state_dict(),
            match=r"protects layers \['3', '5'\], this HLOP protects \['0', '3', '5'\]: build HLOP with layers=")
    wide = Sequential(Conv2d(3, 4, 3, bias=False), LIF(beta=0.9), Flatten(), Linear(144, 16, bias=False),
                      LIF(beta=0.9), Linear(16, 3, bias=False), LI(0.9))  # 3 input channels: patches of 27
    refused(HLOP(wide).state_dict(), match=r"layer '0': subspace weight is \(0, 27\).* have 18 entries")
    too_many = {**state, "subspaces": {**state["subspaces"], "5": {**state["subspaces"]["5"], "num_frozen": 9}}}
    refused(too_many, match=r"layer '5': num_frozen must be an integer in \[0, 6\]")
    refused({**state, "generator": torch.zeros(3)}, match="'generator' is not a torch.Generator state")
    refused({**state, "tasks_done": -1}, match="tasks_done must be an integer >= 0")
    # the last layer's NaN (HebbianSubspace refuses it too, but only after the earlier layers were loaded)
    nan = state["subspaces"]["5"]["weight"].clone()
    nan[0, 0] = float("nan")
    refused({**state, "subspaces": {**state["subspaces"], "5": {**state["subspaces"]["5"], "weight": nan}}},
            match=r"layer '5': subspace weight or velocity holds NaN or inf")


def test_state_dict_warns_about_activity_not_yet_stepped():
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8))
    hlop = HLOP(net, lr=0.05)
    hlop.begin_task([2])
    net.train()
    net(torch.rand(T, B, 6))
    with pytest.warns(RuntimeWarning, match=r"collected since the last step\(\) is not saved"):
        hlop.state_dict()
    hlop.step()
    restored = HLOP(Sequential(Linear(6, 4, bias=False), LIF(beta=0.8)), lr=0.05)
    restored.load_state_dict(hlop.state_dict())
    assert torch.equal(restored.subspaces["0"].weight, hlop.subspaces["0"].weight)


# ---------------------------------------------------------------------------------------------- recurrent layers
def recurrent_net() -> Sequential:
    """Linear 8→16 → RLIF(16), its feedback strong enough to matter → Linear 16→3 → LI (float64: exact checks)."""
    torch.manual_seed(0)
    net = Sequential(Linear(8, 16, bias=False), RLIF(16, beta=0.6, v_th=0.5, record_membrane=True),
                     Linear(16, 3, bias=False), LI(0.5)).double()
    with torch.no_grad():
        net[1].recurrent.weight.mul_(3)
    return net


def presynaptic_activity(net, x_seq) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The RLIF's membranes on ``x_seq`` and every Linear's input vectors (the recurrent one: its previous spikes)."""
    store: dict[str, list] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: store.setdefault(n, []).append(a[0].reshape(-1, m.in_features)))
             for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            _, state = net(x_seq)
    finally:
        for h in hooks:
            h.remove()
    return state["1"].v_seq, {n: torch.cat(v) for n, v in store.items()}


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_projecting_the_recurrent_weights_keeps_an_old_tasks_activity_exactly(method):
    """With each protected layer's old subspace spanning its old presynaptic activity exactly, a new task's training
    leaves the old task's membranes untouched only if the feedback weights are protected too: their input is the
    layer's own spikes of the step before, and ``ΔW_rec·s_old = 0`` keeps every step's current, hence (by
    induction over steps) every spike."""
    g = torch.Generator().manual_seed(0)
    x_old = (torch.rand(4, 3, 2, generator=g, dtype=torch.float64) * 2) @ torch.randn(2, 8, generator=g,
                                                                                      dtype=torch.float64)
    changes = {}
    for protected in (None, ["0", "2"]):  # every Linear (the feedback's included), or the feed-forward ones only
        net = recurrent_net()
        v_old, acts = presynaptic_activity(net, x_old)
        hlop = HLOP(net, layers=protected, orthonormalize=True)
        assert [n for n, _ in hlop.layers] == (protected or ["0", "1.recurrent", "2"])
        subspaces = {}
        for name, _ in hlop.layers:  # an exact basis of the old activity, in place of converged Hebbian rows
            _, sv, vh = torch.linalg.svd(acts[name], full_matrices=False)
            rows = vh[: int((sv > 1e-9 * sv[0]).sum())]
            assert rows.shape[0] < rows.shape[1]  # room left to learn
            subspaces[name] = {"weight": rows, "velocity": torch.zeros_like(rows), "num_frozen": rows.shape[0]}
        hlop.load_state_dict({"tasks_done": 1, "projecting": True, "hebbian": False,
                              "generator": hlop.generator.get_state(), "subspaces": subspaces})
        _train_on_new_task(net, method, g)
        assert not torch.allclose(net[1].recurrent.weight, recurrent_net()[1].recurrent.weight)  # it learnt
        changes[protected is None] = float((presynaptic_activity(net, x_old)[0] - v_old).abs().max())
    assert changes[True] < 1e-12  # every weight projected: the old task's membranes as they were
    assert changes[False] > 0.01  # the feedback left free: they moved


def test_hebbian_rows_of_a_recurrent_layer_learn_its_previous_spikes():
    net = recurrent_net()
    x_seq = torch.rand(5, 32, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, acts = presynaptic_activity(net, x_seq)
    prev, spikes = acts["1.recurrent"], acts["2"]
    assert not prev[:32].any() and torch.equal(prev[32:], spikes[:-32])  # [0, s[0], …, s[T−2]]: what W_rec multiplies
    hlop = HLOP(net, layers=["1.recurrent"], lr=0.05, orthonormalize=True)
    hlop.begin_task([3])

    def left(rows):  # the part of the fed-back spikes outside the rows' span
        basis = _orthonormal_rows(rows)
        return float((prev - prev @ basis.T @ basis).norm() / prev.norm())

    before = left(hlop.subspaces["1.recurrent"].learning)
    net.train()
    with torch.no_grad():
        for _ in range(150):
            net(x_seq)
            hlop.step()
    hlop.end_task()
    best = float(torch.linalg.svdvals(prev)[3:].norm() / prev.norm())  # the principal 3-d subspace's
    learnt = left(hlop.subspaces["1.recurrent"].frozen)
    assert learnt < 1.15 * best and learnt < 0.8 * before, (learnt, best, before)


# ------------------------------------------------------------------------------------------ current-based layers
def cuba_net() -> Sequential:
    """Linear 8→16 → CubaLIF(16) → Linear 16→3 → CubaLIF(3) (float64: exact checks); α, a buffer, is no weight."""
    from neurosim.nn import CubaLIF

    torch.manual_seed(0)
    net = Sequential(Linear(8, 16, bias=False), CubaLIF(alpha=0.7, beta=0.6, v_th=0.5, record_membrane=True),
                     Linear(16, 3, bias=False), CubaLIF(alpha=0.5, beta=0.8, v_th=0.3)).double()
    with torch.no_grad():
        net[2].weight.mul_(10)  # so that the output layer fires
    return net


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_projecting_a_cuba_models_weights_keeps_an_old_tasks_currents_and_membranes_exactly(method):
    """HLOP protects a CubaLIF model's Linear weights (α and β are not weights): with the old subspaces spanning the
    old presynaptic activity, ``ΔW·x_old = 0`` keeps every step's input to the current, hence the current
    ``i[t] = α·i[t−1] + W·x[t]``, the membrane and every spike of the old task."""
    g = torch.Generator().manual_seed(0)
    x_old = (torch.rand(4, 3, 2, generator=g, dtype=torch.float64) * 2) @ torch.randn(2, 8, generator=g,
                                                                                      dtype=torch.float64)
    net = cuba_net()
    store: dict[str, list] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: store.setdefault(n, []).append(a[0].reshape(-1, m.in_features)))
             for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        out_old, state_old = net(x_old)
    for h in hooks:
        h.remove()
    assert 0 < float(out_old.mean()) < 1 and 0 < float(store["2"][0].mean()) < 1  # output and hidden spikes
    hlop = HLOP(net, orthonormalize=True)
    assert [n for n, _ in hlop.layers] == ["0", "2"]
    subspaces = {}
    for name, _ in hlop.layers:  # an exact basis of the old activity, in place of converged Hebbian rows
        acts = torch.cat(store[name])
        _, sv, vh = torch.linalg.svd(acts, full_matrices=False)
        rows = vh[: int((sv > 1e-9 * sv[0]).sum())]
        assert rows.shape[0] < rows.shape[1]  # room left to learn
        subspaces[name] = {"weight": rows, "velocity": torch.zeros_like(rows), "num_frozen": rows.shape[0]}
    hlop.load_state_dict({"tasks_done": 1, "projecting": True, "hebbian": False,
                          "generator": hlop.generator.get_state(), "subspaces": subspaces})
    before = net[0].weight.detach().clone()
    _train_on_new_task(net, method, g)
    assert not torch.allclose(net[0].weight, before)  # it learnt
    with torch.no_grad():
        out, state = net(x_old)
    assert torch.equal(out, out_old)
    torch.testing.assert_close(state["1"].i, state_old["1"].i, rtol=0, atol=1e-12)
    torch.testing.assert_close(state["1"].lif.v_seq, state_old["1"].lif.v_seq, rtol=0, atol=1e-12)


def _train_on_new_task(net, method: str, g: torch.Generator) -> None:
    """20 SGD steps of ``method`` on random inputs ``[4, 8, 8]`` and labels of 3 classes drawn from ``g``."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(20):
        x_new = torch.rand(4, 8, 8, generator=g, dtype=torch.float64) * 2
        optimizer.zero_grad()
        get_method(method).forward_backward(net, x_new, torch.randint(0, 3, (8,), generator=g),
                                            get_loss("rate_ce" if method == "bptt" else "tet"))
        optimizer.step()


def test_a_diverged_hebbian_subspace_names_its_layer():
    torch.manual_seed(0)
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8, v_th=0.2), Linear(4, 2), LI(beta=0.9))
    hlop = HLOP(net, lr=[0.01, 0.03])
    hlop.begin_task([1, 1])
    hlop.subspaces["2"].weight.mul_(3.0)  # rows grown past unit length, as too large a rate leaves them
    net(torch.rand(3, 5, 6))
    with pytest.raises(FloatingPointError, match=r"^HLOP layer '2' \(protected layer 2 of 2, task 0\): Hebbian "
                                                 r"subspace weights diverged \(lr 0.03 .* reached norm [0-9.]+"):
        hlop.step()


def test_with_an_orthonormal_basis_long_hebbian_rows_warn_once_and_nan_still_raises():
    """HLOP(orthonormalize=True) projects with an orthonormal basis of the rows' span, which long rows still give:
    the divergence refusal blocked a setting that trained (event digits, hlop.lr=0.03: ACC 89.2 % with it, 10.0 %
    without an orthonormal basis); it warns there, once, and weights that are not finite are an error either way."""
    torch.manual_seed(0)
    net = Sequential(Linear(6, 4, bias=False), LIF(beta=0.8, v_th=0.2), Linear(4, 2), LI(beta=0.9))
    hlop = HLOP(net, lr=[0.01, 0.03], orthonormalize=True)
    hlop.begin_task([1, 1])
    hlop.subspaces["2"].weight.mul_(3.0)
    net(torch.rand(3, 5, 6))
    with pytest.warns(RuntimeWarning, match=r"Hebbian subspace rows reached norm [0-9.]+ \(lr 0.03 .* only their span "
                                            r"is used") as caught:
        hlop.step()
    assert caught[0].filename == __file__  # the user's line, not torch's no_grad wrapper the update runs in
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per layer
        net(torch.rand(3, 5, 6))
        hlop.step()
    hlop.subspaces["2"].weight.fill_(float("nan"))
    net(torch.rand(3, 5, 6))
    with pytest.raises(FloatingPointError, match=r"^HLOP layer '2' .*Hebbian subspace weights diverged"):
        hlop.step()
    with pytest.raises(ValueError, match="long_rows must be 'raise' or 'warn', got 'ignore'"):
        HebbianSubspace(4, long_rows="ignore")
