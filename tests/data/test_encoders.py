"""Static-image spike encoders: shapes (time first), statistics, hand examples, and equality with
snntorch.spikegen where the semantics match."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from snntorch import spikegen

from neurosim.data.encoders import delta_encode, latency_encode, rate_encode

# ------------------------------------------------------------------------------------------------------ rate


def test_rate_shapes_time_first_for_batch_and_single_image():
    assert rate_encode(torch.rand(4, 1, 28, 28), 7, seed=0).shape == (7, 4, 1, 28, 28)
    assert rate_encode(torch.rand(28, 28), 5, seed=0).shape == (5, 28, 28)
    out = rate_encode(np.random.default_rng(0).random((2, 3)), 3, seed=0)  # numpy in, tensor out
    assert isinstance(out, torch.Tensor) and out.shape == (3, 2, 3) and out.dtype == torch.float64


@pytest.mark.parametrize("method", ["bernoulli", "poisson"])
def test_rate_mean_matches_intensity(method):
    x = torch.linspace(0, 1, 11)
    s = rate_encode(x, 20_000, method=method, seed=1)
    np.testing.assert_allclose(s.mean(0).numpy(), x.numpy(), atol=0.015)
    if method == "bernoulli":
        assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
        assert s[:, 0].sum() == 0 and s[:, -1].sum() == 20_000  # p = 0 never, p = 1 always


def test_rate_gain_offset_and_poisson_counts():
    x = torch.full((5000,), 0.5)
    s = rate_encode(x, 4, gain=0.5, offset=0.1, seed=0)
    assert abs(s.mean().item() - 0.35) < 0.02
    counts = rate_encode(x, 4, gain=4.0, method="poisson", seed=0)
    assert counts.max() > 1 and abs(counts.mean().item() - 2.0) < 0.05  # Poisson(2): counts, not binary
    assert abs(counts.var().item() - 2.0) < 0.15


def test_rate_seeded_is_deterministic_and_generator_works():
    x = torch.rand(3, 10)
    a, b = rate_encode(x, 50, seed=7), rate_encode(x, 50, seed=7)
    assert torch.equal(a, b) and not torch.equal(a, rate_encode(x, 50, seed=8))
    g = torch.Generator().manual_seed(7)
    assert torch.equal(rate_encode(x, 50, generator=g), a)
    with pytest.raises(ValueError, match="either seed or generator"):
        rate_encode(x, 5, seed=1, generator=g)


def test_rate_equals_snntorch_under_the_same_seed():
    x = torch.rand(8, 1, 6, 6)
    torch.manual_seed(123)
    theirs = spikegen.rate(x, num_steps=25)
    assert torch.equal(rate_encode(x, 25, seed=123), theirs)
    torch.manual_seed(5)
    theirs = spikegen.rate(x, num_steps=10, gain=0.7, offset=0.1)
    assert torch.equal(rate_encode(x, 10, gain=0.7, offset=0.1, seed=5), theirs)


@pytest.mark.parametrize("encoder", [lambda x: rate_encode(x, 3), lambda x: latency_encode(x, 3, normalize=True)])
def test_values_outside_unit_range_are_refused(encoder):
    with pytest.raises(ValueError, match=r"\[0, 1\].*divide by 255"):
        encoder(torch.tensor([0.0, 128.0, 255.0]))
    with pytest.raises(ValueError, match=r"values in \[-0.5, 0.5\]"):
        encoder(torch.tensor([-0.5, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        encoder(torch.tensor([0.5, float("nan")]))


def test_uint8_in_range_is_accepted_and_bad_args_refused():
    assert rate_encode(np.array([0, 1], dtype=np.uint8), 2, seed=0).dtype == torch.float32
    with pytest.raises(ValueError, match="num_steps"):
        rate_encode(torch.rand(3), 0)
    with pytest.raises(ValueError, match="method"):
        rate_encode(torch.rand(3), 2, method="gauss")


# ------------------------------------------------------------------------------------------------------ latency


def test_latency_one_spike_each_brighter_fires_earlier():
    x = torch.tensor([[0.05, 0.2, 0.5, 0.8, 1.0]])
    for linear in (False, True):
        s = latency_encode(x, 10, linear=linear, normalize=True)
        assert s.shape == (10, 1, 5)
        assert torch.equal(s.sum(0), torch.ones(1, 5))
        t = s.argmax(0)[0].tolist()
        assert t == sorted(t, reverse=True) and t[0] == 9 and t[-1] == 0


def test_latency_linear_hand_example():
    # snnTorch's docstring example: t = (T-1)(1-x) with normalize → 0.02→3.92→4, 0.5→2, 1→0
    s = latency_encode(torch.tensor([0.02, 0.5, 1.0]), 5, linear=True, normalize=True)
    assert s.argmax(0).tolist() == [4, 2, 0]
    # linear with tau = 2 steps: t = 2·(1 − x) → 1.6→2, 1.0, 0.0
    s = latency_encode(torch.tensor([0.2, 0.5, 1.0]), 4, linear=True, tau=2.0)
    assert s.argmax(0).tolist() == [2, 1, 0]


def test_latency_log_hand_example():
    # t = τ·ln(x / (x − θ)); τ = 5, θ = 0.1: x = 1 → 0.527 → 1; x = 0.2 → 5·ln 2 = 3.47 → 3
    s = latency_encode(torch.tensor([1.0, 0.2]), 6, tau=5.0, threshold=0.1)
    assert s.argmax(0).tolist() == [1, 3]


def test_latency_clip_threshold_and_late_spikes_dropped():
    x = torch.tensor([0.0, 0.005, 0.5, 1.0])
    s = latency_encode(x, 8, normalize=True, clip=True)
    assert s.sum(0).tolist() == [0.0, 0.0, 1.0, 1.0]  # below threshold 0.01: no spike with clip
    s = latency_encode(x, 8, normalize=True)
    assert s[-1, :2].tolist() == [1.0, 1.0]  # without clip they saturate at the last step
    s = latency_encode(x, 3)  # log code, no normalize: dim pixels would fire after step 2 → dropped
    assert s.sum(0).tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("first_spike_time", [0, 3])
def test_latency_equals_snntorch(linear, normalize, clip, first_spike_time):
    x = torch.rand(6, 2, 7, 7, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 0.01])
    kw = dict(linear=linear, normalize=normalize, clip=clip, first_spike_time=first_spike_time, threshold=0.05,
              tau=4.0)
    theirs = spikegen.latency(x, num_steps=20, bypass=True, **kw)
    ours = latency_encode(x, 20, **kw)
    assert ours.shape == (20, 6, 2, 7, 7)
    assert torch.equal(ours, theirs)


def test_latency_bad_arguments():
    x = torch.rand(3)
    for kw, msg in [({"threshold": 0.0}, "threshold"), ({"threshold": 1.0}, "threshold"), ({"tau": 0}, "tau"),
                    ({"first_spike_time": 5}, "first_spike_time"),
                    # accepted before: spikes at round(t + 1.5), and a NaN or negative epsilon ignored or NaN times
                    ({"first_spike_time": 1.5}, "first_spike_time must be a whole number of steps .*got 1.5"),
                    ({"first_spike_time": True}, "first_spike_time must be a whole number"),
                    ({"epsilon": float("nan")}, "epsilon must be a small positive finite number.*got nan"),
                    ({"epsilon": -1.0}, "epsilon must be"), ({"epsilon": 0.0}, "epsilon must be")]:
        with pytest.raises(ValueError, match=msg):
            latency_encode(x, 5, **kw)
    assert latency_encode(x, 5, first_spike_time=np.int64(2)).sum() == 3  # numpy integers are whole numbers
    # whole numbers given as floats (snnTorch's latency takes them) encode as the int
    want = latency_encode(x, 5, first_spike_time=2)
    for whole in (2.0, np.float64(2.0)):
        assert torch.equal(latency_encode(x, 5, first_spike_time=whole), want)
    with pytest.raises(ValueError, match="first_spike_time must be a whole number"):
        latency_encode(x, 5, first_spike_time=float("nan"))


def test_latency_with_a_huge_tau_drops_late_spikes_instead_of_wrapping_their_step():
    out = latency_encode(torch.tensor([0.0, 0.5, 1.0]), 5, linear=True, tau=1e30)  # t beyond int64 for x < 1
    assert out.sum(0).tolist() == [0.0, 0.0, 1.0] and out[0, 2] == 1


# ------------------------------------------------------------------------------------------------------ delta


def test_delta_hand_examples():
    a = torch.tensor([1.0, 2.0, 2.9, 3.0, 3.9])
    assert delta_encode(a, threshold=1).tolist() == [1, 1, 0, 0, 0]
    assert delta_encode(a, threshold=1, padding=True).tolist() == [0, 1, 0, 0, 0]
    b = torch.tensor([1.0, 2.0, 0.0, 2.0, 2.9])
    assert delta_encode(b, threshold=1, off_spike=True).tolist() == [1, 1, -1, 1, 0]
    assert delta_encode(b, threshold=1, off_spike=True, padding=True).tolist() == [0, 1, -1, 1, 0]


def test_delta_on_a_moving_bar():
    # a bright bar moving one pixel per frame: ON spikes at its leading edge, OFF at the trailing edge
    frames = torch.zeros(4, 6)
    for t in range(4):
        frames[t, t:t + 2] = 1.0
    s = delta_encode(frames, threshold=0.5, off_spike=True, padding=True)
    assert s[0].abs().sum() == 0
    for t in range(1, 4):
        assert s[t].tolist() == [(-1.0 if i == t - 1 else 1.0 if i == t + 1 else 0.0) for i in range(6)]


@pytest.mark.parametrize("off_spike", [False, True])
@pytest.mark.parametrize("padding", [False, True])
def test_delta_equals_snntorch(off_spike, padding):
    x = torch.randn(12, 3, 5, generator=torch.Generator().manual_seed(1))
    theirs = spikegen.delta(x, threshold=0.4, off_spike=off_spike, padding=padding)
    assert torch.equal(delta_encode(x, threshold=0.4, off_spike=off_spike, padding=padding), theirs)


def test_delta_bad_arguments():
    with pytest.raises(ValueError, match="threshold"):
        delta_encode(torch.rand(3, 2), threshold=0)
    with pytest.raises(ValueError, match="time-first"):
        delta_encode(torch.tensor(1.0))
    with pytest.raises(ValueError, match="NaN"):
        delta_encode(torch.tensor([0.0, float("nan")]))


def test_big_endian_arrays_and_bad_gains():
    x = np.array([[0.5, 1.0]], dtype=">f4")  # e.g. read from a file written on another machine
    assert torch.equal(rate_encode(x, 3, seed=0), rate_encode(x.astype("<f4"), 3, seed=0))
    with pytest.raises(ValueError, match="gain must be a finite number, got inf"):
        rate_encode(x, 3, gain=float("inf"), method="poisson")


def test_poisson_rates_beyond_the_exact_counts_of_the_output_dtype_are_refused():
    # torch.poisson's int64 counts overflowed: gain=1e30 returned counts of -9.2e18
    x = torch.tensor([0.5, 1.0])
    with pytest.raises(ValueError, match=r"needs gain·x \+ offset <= 16777216 \(2\*\*24, .*torch.float32.*got 1e\+30"):
        rate_encode(x, 3, method="poisson", gain=1e30)
    with pytest.raises(ValueError, match=r"<= 9007199254740992 \(2\*\*53"):
        rate_encode(x.double(), 3, method="poisson", gain=1e17)
    counts = rate_encode(x, 3, method="poisson", gain=2.0 ** 24, seed=0)  # the limit itself is drawn
    assert counts.min() > 0 and counts.max() < 2 ** 25
    assert rate_encode(x, 3, gain=1e30, seed=0).max() == 1  # bernoulli clips the probability, as snnTorch
