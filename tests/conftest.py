import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test so every test is reproducible on its own."""
    return np.random.default_rng(231)


@pytest.fixture(scope="module")
def torch_one_thread():
    """PyTorch on one thread for a module's tests: tiny convolutions gain nothing from a
    second thread, and idle OpenMP threads spin, which a shared 2-core CI machine feels."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
