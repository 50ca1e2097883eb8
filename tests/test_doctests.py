"""The examples in neurosim's docstrings run and print what they show (STYLE: doc examples are doctests).
``hardware_models``' own examples are run in tests/hardware_models/test_api.py."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import types

import pytest

import neurosim

MODULES = sorted(m.name for m in pkgutil.walk_packages(neurosim.__path__, "neurosim.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    mod = importlib.import_module(name)
    # the module's own functions and classes, but not the modules it imported: an example must import torch, numpy
    # ... itself, as a reader pasting it would (a broken `>>> import torch` line otherwise went unnoticed)
    globs = {k: v for k, v in vars(mod).items() if not isinstance(v, types.ModuleType)}
    result = doctest.testmod(mod, globs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


def test_the_examples_are_found():
    finder = doctest.DocTestFinder()
    found = sum(len(t.examples) for n in MODULES for t in finder.find(importlib.import_module(n)))
    assert found > 100  # 150 when written: a broken import or finder would find none
