"""Atomic writes leave files with the permissions a plain write would, not the temporary file's private 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from hardware_models import ActivityProfile
from neurosim._io import atomic_write_text

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_readable_by_others_as_the_umask_allows(tmp_path, umask_022):
    profile = ActivityProfile(time_steps=2, dt_s=1e-3, samples=1, spikes_per_step={"lif": np.array([1.0, 0.0])})
    for path in (atomic_write_text(tmp_path / "a.txt", "x"), profile.to_json(tmp_path / "activity.json")):
        assert _mode(path) == 0o644, path


def test_rewriting_a_file_keeps_its_permissions(tmp_path, umask_022):
    path = tmp_path / "shared.txt"
    path.write_text("old")
    os.chmod(path, 0o664)  # e.g. a group-writable shared cache
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664
