"""neurosim._openmp: the shorter OpenMP spin-wait set at import, and the user's own choice kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from neurosim._openmp import SPIN_COUNT, shorten_spin_wait


def test_sets_the_spin_count_where_the_environment_is_silent():
    env = {"PATH": "/usr/bin"}
    assert shorten_spin_wait(env) is True
    assert env["GOMP_SPINCOUNT"] == SPIN_COUNT == "10000"


@pytest.mark.parametrize("variable, value", [("GOMP_SPINCOUNT", "300000"), ("OMP_WAIT_POLICY", "PASSIVE"),
                                             ("OMP_WAIT_POLICY", "active")])
def test_keeps_the_users_choice(variable, value):
    env = {variable: value}
    assert shorten_spin_wait(env) is False
    assert env == {variable: value}  # nothing added: OMP_WAIT_POLICY alone decides libgomp's spin count


def _spin_count_after_import(**extra) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(extra)
    code = "import os, neurosim; print(os.environ.get('GOMP_SPINCOUNT', '<unset>'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_neurosim_sets_it_for_the_runtimes_loaded_after():
    assert _spin_count_after_import() == SPIN_COUNT
    assert _spin_count_after_import(GOMP_SPINCOUNT="123") == "123"
    assert _spin_count_after_import(OMP_WAIT_POLICY="PASSIVE") == "<unset>"
