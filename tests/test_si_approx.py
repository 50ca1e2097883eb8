"""The test helper approx_si compares SI-unit quantities by relative tolerance alone (see tests/si_approx.py)."""

from __future__ import annotations

import pytest

from si_approx import approx_si


def test_pytest_approx_keeps_its_absolute_tolerance_when_rel_is_given():
    # the trap approx_si exists for: max(rel * |expected|, 1e-12) lets 55 fJ pass for an expected 441 fJ
    assert 55e-15 == pytest.approx(441e-15, rel=1e-6)
    assert 55e-15 != approx_si(441e-15)


def test_approx_si_is_relative_at_every_scale():
    for expected in (441e-15, 3.5e-9, 2.0, 4e3):
        assert expected * (1 + 5e-7) == approx_si(expected)
        assert expected * (1 + 2e-6) != approx_si(expected)
        assert expected * 1.01 == approx_si(expected, rel=0.02)
    assert {"a": 1e-13, "b": 0.0} == approx_si({"a": 1e-13 * (1 + 1e-7), "b": 0.0})
    assert {"a": 1e-13, "b": 1e-30} != approx_si({"a": 1e-13, "b": 0.0})  # an expected 0 is exactly 0
