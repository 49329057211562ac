import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test so every test is reproducible on its own."""
    return np.random.default_rng(231)
