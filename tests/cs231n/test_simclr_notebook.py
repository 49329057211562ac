"""The SimCLR notebook's package and loss check (which names each ``cs231n.simclr.*`` module gives
is checked with the other notebooks', in test_notebook_imports.py)."""

import importlib
import textwrap

import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import simclr  # noqa: E402
from deep_learning_suite.utils import rel_error  # noqa: E402


def test_package_is_only_a_docstring():
    package = importlib.import_module("cs231n.simclr")
    assert package.__doc__
    assert not [n for n in vars(package) if not n.startswith("_")
                and n not in ("contrastive_loss", "data_utils", "utils", "model")]


def test_notebook_imports_and_loss_check_cell():
    # The notebook's imports, then its naive-versus-vectorized comparison on random inputs.
    namespace = {"rel_error": rel_error}
    state = torch.random.get_rng_state()
    try:
        exec(textwrap.dedent("""
            import torch
            from cs231n.simclr.contrastive_loss import *
            from cs231n.simclr.data_utils import *
            from cs231n.simclr.utils import *
            from cs231n.simclr.model import Model

            torch.manual_seed(231)
            errors = []
            for N, D, tau in [(2, 3, 0.5), (4, 16, 0.1), (8, 128, 1.0)]:
                out_left = torch.randn(N, D, dtype=torch.float64)
                out_right = torch.randn(N, D, dtype=torch.float64)
                naive = simclr_loss_naive(out_left, out_right, tau)
                vectorized = simclr_loss_vectorized(out_left, out_right, tau, device='cpu')
                errors.append(rel_error(naive.item(), vectorized.item()))
            sim_err = rel_error(sim(out_left[0], out_right[0]).item(),
                                sim_positive_pairs(out_left, out_right)[0, 0].item())
            view = compute_train_transform()(torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8).numpy())
        """), namespace)
    finally:
        torch.random.set_rng_state(state)
    assert max(namespace["errors"]) < 1e-10 and namespace["sim_err"] < 1e-12
    assert namespace["view"].shape == (3, 32, 32)
    assert namespace["Model"] is simclr.Model and namespace["test"] is simclr.test
