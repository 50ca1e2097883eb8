"""``approx_si``: pytest.approx for quantities in SI units (joules, seconds, watts), relative tolerance only.

``pytest.approx(expected, rel=r)`` accepts anything within ``max(r * |expected|, 1e-12)``: its default absolute
tolerance of 1e-12 applies even when ``rel`` is given. Hardware estimates are in SI units (energies from 1e-15 J,
latencies from 1e-9 s), so for them that absolute tolerance is the whole comparison: ``441e-15 == approx(55e-15)``
holds, and a 4 pJ energy passes for anything from 3 to 5 pJ. ``approx_si`` sets ``abs=0``, so the relative
tolerance alone decides; an expected 0 must then be exactly 0. tests/test_si_approx.py shows the trap.
"""

from __future__ import annotations

import pytest


def approx_si(expected, rel: float = 1e-6):
    """``pytest.approx(expected, rel=rel, abs=0)``: a number, a sequence or a dict of SI-unit quantities."""
    return pytest.approx(expected, rel=rel, abs=0)
