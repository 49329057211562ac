"""The SimCLR notebook's imports (``cs231n.simclr.*``) must give the toolkit's own objects, and
its loss check must run on them."""

import importlib
import textwrap

import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import simclr, simclr_augment  # noqa: E402
from deep_learning_suite.utils import rel_error  # noqa: E402

COURSE_NAMES = {
    "cs231n.simclr.contrastive_loss": {
        simclr: ["sim", "simclr_loss_naive", "sim_positive_pairs", "compute_sim_matrix",
                 "simclr_loss_vectorized"],
    },
    "cs231n.simclr.data_utils": {
        simclr_augment: ["compute_train_transform", "compute_test_transform"],
        simclr: ["CIFAR10Pair"],
    },
    "cs231n.simclr.utils": {simclr: ["train", "train_val", "test"]},
    "cs231n.simclr.model": {simclr: ["Model"]},
}


@pytest.mark.parametrize("module_name", sorted(COURSE_NAMES))
def test_course_module_gives_the_toolkits_own_objects(module_name):
    shim = importlib.import_module(module_name)
    for home, names in COURSE_NAMES[module_name].items():
        for name in names:
            assert getattr(shim, name) is getattr(home, name), (module_name, name)
    assert sorted(shim.__all__) == sorted(n for names in COURSE_NAMES[module_name].values()
                                          for n in names)


@pytest.mark.parametrize("module_name", sorted(COURSE_NAMES))
def test_star_import_gives_only_the_course_names(module_name):
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    for names in COURSE_NAMES[module_name].values():
        missing = [n for n in names if n not in namespace]
        assert not missing, f"from {module_name} import * lacks {missing}"
    for leaked in ("np", "torch", "nn", "F", "tqdm"):
        assert leaked not in namespace, leaked


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
