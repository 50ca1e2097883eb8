"""Integer-seeded random transforms under torch DataLoader workers: each worker, and each epoch of workers started
anew, draws its own augmentations (the workers used to repeat the parent's untouched stream), repeatably for a fixed
torch seed; in the main process the stream is ``np.random.default_rng(seed)`` as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from neurosim.data import transforms as T

EVENTS = np.zeros(200, [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
EVENTS["x"], EVENTS["t"] = np.arange(200) % 34, 1000 + np.arange(200) * 10  # no jitter makes t negative


class Jittered(Dataset):
    """The same recording every time, through one transform: whatever differs between items is its random draw."""

    def __init__(self, transform) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> tuple:
        return tuple(self.transform(EVENTS.copy())["t"][:4].tolist())


def _epochs(transform, workers: int, epochs: int = 2, persistent: bool = False) -> list[list[tuple]]:
    torch.manual_seed(0)
    loader = DataLoader(Jittered(transform), batch_size=None, num_workers=workers,
                        persistent_workers=persistent and workers > 0)
    return [[tuple(item) for item in loader] for _ in range(epochs)]


@pytest.mark.parametrize("make", [lambda: T.TimeJitter(std=50.0, seed=7), lambda: T.DropEvent(p=0.5, seed=7)],
                         ids=["TimeJitter", "DropEvent"])
def test_an_int_seed_draws_anew_in_every_worker_and_epoch_and_repeats_under_the_same_torch_seed(make):
    first, second = _epochs(make(), workers=2)
    assert first != second  # workers forked anew each epoch restarted the same stream: the same augmentations
    assert len(set(first)) == len(first)  # both workers drew the same ones
    assert _epochs(make(), workers=2) == [first, second]  # the worker seeds come from torch's RNG
    persistent = _epochs(make(), workers=2, persistent=True)
    assert persistent[0] != persistent[1] and len(set(persistent[0])) == len(persistent[0])


def test_in_the_main_process_an_int_seed_is_default_rng_of_it_as_before():
    first, second = _epochs(T.TimeJitter(std=50.0, seed=7), workers=0)
    rng = np.random.default_rng(7)
    expected = [tuple((EVENTS["t"] + rng.normal(0, 50.0, len(EVENTS))).astype(np.int64)[:4].tolist())
                for _ in range(12)]
    assert first + second == expected


def test_a_generator_given_as_seed_is_used_as_given_in_every_worker():
    # documented: each worker gets a copy of it in the state it had when the workers started
    first, second = _epochs(T.TimeJitter(std=50.0, seed=np.random.default_rng(7)), workers=2)
    assert first == second and first[0::2] == first[1::2]
