"""Tests of the scripts in ``benchmarks/``, which are files to run, not an importable package."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name):
    """A fresh module object for ``benchmarks/{name}.py`` (so monkeypatching one test's copy
    never leaks into another's)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
