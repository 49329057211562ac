import numpy as np

from deep_learning_suite.utils import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_rel_error_definition():
    assert rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert np.isclose(rel_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])), 1 / 5)
    # The 1e-8 floor keeps two tiny numbers from reading as a 100% error.
    assert rel_error(np.array([0.0]), np.array([1e-12])) < 1e-3


def test_numerical_gradient_of_known_function(rng):
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    grad = eval_numerical_gradient(lambda v: np.sum(v**3), x, verbose=False)
    assert rel_error(grad, 3 * x0**2) < 1e-8
    assert np.array_equal(x, x0), "x must be restored after perturbation"


def test_numerical_gradient_array_is_vjp(rng):
    x = rng.standard_normal((2, 5))
    A = rng.standard_normal((5, 3))
    df = rng.standard_normal((2, 3))
    grad = eval_numerical_gradient_array(lambda v: np.sin(v) @ A, x, df)
    assert rel_error(grad, np.cos(x) * (df @ A.T)) < 1e-8


def test_grad_check_sparse_flags_wrong_gradient(rng):
    x = rng.standard_normal((4, 4))
    f = lambda v: float(np.sum(v**2))
    good = grad_check_sparse(f, x, 2 * x, num_checks=5, seed=0, verbose=False)
    bad = grad_check_sparse(f, x, 3 * x, num_checks=5, seed=0, verbose=False)
    assert max(good) < 1e-8
    assert min(bad) > 0.1


def test_grad_check_sparse_without_seed_follows_np_random_seed(rng):
    x = rng.standard_normal((30, 30))
    touched = []

    def f(v):
        touched.append(np.argwhere(v != x_copy))
        return float(np.sum(v ** 2))

    state = np.random.get_state()
    try:
        runs = []
        for global_seed in (5, 5, 6):
            x_copy = x.copy()
            touched.clear()
            np.random.seed(global_seed)
            grad_check_sparse(f, x, 2 * x, num_checks=4, verbose=False)
            runs.append([tuple(t[0]) for t in touched])
    finally:
        np.random.set_state(state)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
