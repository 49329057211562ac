import re

import numpy as np
import pytest

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


# --- refusing inputs that would give a silently wrong gradient ---------------------------

def _loss(v):
    return float(np.sum(np.asarray(v, dtype=np.float64) ** 2))


_CHECKERS = {
    "eval": lambda f, x, h: eval_numerical_gradient(f, x, verbose=False, h=h),
    "array": lambda f, x, h: eval_numerical_gradient_array(lambda v: np.array([f(v)]), x,
                                                           np.ones(1), h=h),
    "sparse": lambda f, x, h: grad_check_sparse(f, x, 2 * np.asarray(x, dtype=np.float64),
                                                num_checks=3, h=h, seed=0, verbose=False),
}


@pytest.mark.parametrize("which", sorted(_CHECKERS))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_x_is_refused(which, dtype):
    # a 0 among the values: a bool False moves to True under +h and -h alike (a zero step),
    # so only the dtype check, not the "unchanged" one, can refuse it
    x = np.array([0, 1, 2]).astype(dtype)
    with pytest.raises(ValueError, match=r"has dtype \w+, so x \+ h would be truncated .*astype\(np.float64\)"):
        _CHECKERS[which](_loss, x, 1e-5)


@pytest.mark.parametrize("which", sorted(_CHECKERS))
@pytest.mark.parametrize("h", [0, 0.0, -1e-5, float("nan"), float("inf"), None, "1e-5",
                               # not 0-d: float() takes a size-1 masked array, and on NumPy < 1.25
                               # a size-1 ndarray too, but a step must be one number
                               np.array([1e-5]), np.ma.array([1e-5]), np.full(2, 1e-5), [1e-5]])
def test_nonpositive_or_nonfinite_h_is_refused(which, h):
    with pytest.raises(ValueError, match="h must be a positive finite number"):
        _CHECKERS[which](_loss, np.array([1.0, 2.0, 3.0]), h)


_TO_F64 = r"a larger h or x\.astype\(np\.float64\)$"
_LARGER_H = r"a larger h$"      # x is float64 already: converting it would not help


@pytest.mark.parametrize("which", sorted(_CHECKERS))
@pytest.mark.parametrize("x, h, hint", [
    (np.array([1000.0, 2000.0], np.float32), 1e-5, _TO_F64),
    (np.array([1.0, 2.0], np.float32), 1e-8, _TO_F64),
    (np.array([1.0, 2.0], np.float16), 1e-5, _TO_F64),
    (np.array([1.0, 2.0, 3.0]), 1e-20, _LARGER_H),
    (np.array([1e12, -3e12]), 1e-5, _LARGER_H),
])
def test_step_too_small_to_move_x_is_refused(which, x, h, hint):
    x0 = x.copy()
    with pytest.raises(ValueError, match=rf"x\[\d+\] = .* unchanged .*use {hint}"):
        _CHECKERS[which](_loss, x, h)
    assert np.array_equal(x, x0)


@pytest.mark.parametrize("which", sorted(_CHECKERS))
@pytest.mark.parametrize("value", [1.0, -1.0], ids=["only-minus-moves", "only-plus-moves"])
def test_step_that_moves_only_one_way_is_refused(which, value):
    # float32 spacing just below 1 is half that above it: 1 + 4e-8 rounds back to 1 while
    # 1 - 4e-8 does not, and at -1 it is the other way round; either direction must be caught
    x = np.array([value], np.float32)
    up, down = np.float32(value) + np.float32(4e-8), np.float32(value) - np.float32(4e-8)
    assert (up == value) != (down == value)
    with pytest.raises(ValueError, match="unchanged"):
        _CHECKERS[which](_loss, x, 4e-8)
    assert x[0] == value


def test_float32_x_with_a_step_it_can_resolve_still_works():
    x = np.array([[0.5, -1.5], [2.0, 0.25]], np.float32)
    grad = eval_numerical_gradient(lambda v: float(np.sum(v.astype(np.float64) ** 3)), x,
                                   verbose=False, h=1e-3)
    assert grad.dtype == np.float32 and rel_error(grad, 3 * x.astype(np.float64) ** 2) < 1e-4


@pytest.mark.parametrize("x", [[1.0, 2.0], (1.0, 2.0)])
def test_non_array_x_is_refused(x):
    with pytest.raises(TypeError, match="must be a NumPy array"):
        eval_numerical_gradient(_loss, x, verbose=False)


def test_torch_tensor_x_is_refused_rather_than_perturbed_through_a_view():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="must be a NumPy array"):
        eval_numerical_gradient(lambda v: (v ** 2).sum(), torch.tensor([1.0, 2.0]), verbose=False)


@pytest.mark.parametrize("which", ["eval", "sparse"])
@pytest.mark.parametrize("f, what", [
    (lambda v: v ** 2, r"an array of shape \(3,\)"),
    (lambda v: (float(np.sum(v ** 2)), {"W": 2 * v}), "a tuple of length 2"),
    (lambda v: None, "NoneType"),
    (lambda v: [float(np.sum(v ** 2))], "a list"),
])
def test_f_that_does_not_return_a_scalar_is_refused(which, f, what):
    checker = _CHECKERS[which]
    with pytest.raises(ValueError, match=rf"f must return a scalar loss .*model\.loss\(X, y\)\[0\].*{what}"):
        checker(f, np.array([1.0, 2.0, 3.0]), 1e-5)


def _torch_loss(v):
    torch = pytest.importorskip("torch")
    return (torch.from_numpy(v) ** 2).sum()


@pytest.mark.parametrize("which", ["eval", "sparse"])
@pytest.mark.parametrize("f", [
    lambda v: float(np.sum(v ** 2)),                # Python float
    lambda v: np.sum(v ** 2),                      # NumPy scalar
    lambda v: np.float32(np.sum(v ** 2)),           # float32 NumPy scalar
    lambda v: np.array(np.sum(v ** 2)),             # 0-d array
    lambda v: np.sum(v ** 2, keepdims=True),        # size-1 array: accepted as its one value
    lambda v: np.sum(v ** 2).reshape(1, 1),
    _torch_loss,                                    # 0-d tensor, as the PyTorch notebooks pass
    lambda v: _torch_loss(v).reshape(1),            # size-1 tensor
], ids=["float", "np-scalar", "np-float32", "0d", "size1", "size1x1", "tensor0d", "tensor1"])
def test_scalar_losses_of_every_kind_are_accepted(which, f):
    x = np.array([1.0, -2.0, 3.0])
    h = 1e-2 if isinstance(f(x), np.float32) else 1e-5     # a float32 loss needs a wide step
    if which == "eval":
        grad = eval_numerical_gradient(f, x, verbose=False, h=h)
        assert grad.shape == x.shape and rel_error(grad, 2 * x) < 1e-5
    else:
        errors = grad_check_sparse(f, x, 2 * x, num_checks=3, h=h, seed=0, verbose=False)
        assert max(errors) < 1e-5


def test_array_checker_still_takes_array_valued_f_and_refuses_forward_tuples(rng):
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((3, 2))
    assert rel_error(eval_numerical_gradient_array(lambda v: 2 * v, x, df), 2 * df) < 1e-8
    torch = pytest.importorskip("torch")
    tgrad = eval_numerical_gradient_array(lambda v: 2 * torch.from_numpy(v), x, df)
    assert rel_error(tgrad, 2 * df) < 1e-8
    with pytest.raises(ValueError, match=r"f must return the output array .*\[0\]"):
        eval_numerical_gradient_array(lambda v: (2 * v, (v, np.ones(4))), x, df)


def test_grad_check_sparse_refuses_a_misshapen_analytic_grad():
    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"analytic_grad has shape \(2, 2\), x has shape \(3,\)"):
        grad_check_sparse(_loss, x, np.ones((2, 2)), num_checks=2, seed=0, verbose=False)


# --- rel_error: elementwise, never an outer comparison ----------------------------------

@pytest.mark.parametrize("a, b, expect", [
    (np.ones((3, 1)), np.array([1.0, 2.0, 3.0]), 0.5),        # (3,1) vs (3,): squeezed
    (np.array([1.0, 2.0, 3.0]), np.ones((1, 3)), 0.5),
    (np.ones((1, 3, 1)), np.ones((3,)), 0.0),
    (np.array([1.0, 2.0]), [1.0, 3.0], 0.2),                  # a list
    (np.array([[1.0]]), 1.0, 0.0),                            # (1,1) vs a scalar
    (2.0, np.array([2.0, 2.0, 6.0]), 0.5),                    # a scalar loss against an array
    (np.float64(2.3), 2.3, 0.0),
])
def test_rel_error_compares_elementwise(a, b, expect):
    assert np.isclose(rel_error(a, b), expect)
    assert np.isclose(rel_error(b, a), expect)


@pytest.mark.parametrize("a, b", [
    (np.ones(3), np.ones(4)),
    (np.ones((3, 1)), np.ones((1, 3, 2))),
    (np.ones((2, 3)), np.ones(3)),                # would broadcast, but is not the same values
    (np.ones((3, 1)), np.ones((1, 3))),           # squeezes equal, so this one is allowed...
])
def test_rel_error_refuses_shapes_that_would_broadcast(a, b):
    if np.squeeze(a).shape == np.squeeze(b).shape:
        assert rel_error(a, b) == 0.0             # ...and compared elementwise, not 3x3
        return
    with pytest.raises(ValueError, match=rf"shapes {re_shape(a)} and {re_shape(b)}"):
        rel_error(a, b)


def re_shape(a):
    import re
    return re.escape(str(np.shape(a)))


def test_rel_error_of_3x1_against_3_is_not_an_outer_comparison():
    # broadcasting (3,1) against (3,) compared all 9 pairs and reported 1 for equal inputs
    a = np.array([[1.0], [2.0], [3.0]])
    assert rel_error(a, np.array([1.0, 2.0, 3.0])) == 0.0


def test_rel_error_takes_torch_tensors():
    torch = pytest.importorskip("torch")
    assert rel_error(torch.ones(3, dtype=torch.float64), np.ones((3, 1))) == 0.0
    assert np.isclose(rel_error(torch.tensor(2.0), np.array([2.0, 6.0])), 0.5)


@pytest.mark.parametrize("value", [1.0, 100.0, 200.0, 250.0])
def test_float32_steps_that_round_still_give_the_right_slope(value):
    # In float32, 100 + 1e-5 is stored 7.6e-6 above 100 and 200 + 1e-5 1.5e-5 above 200:
    # dividing by 2h instead of the step taken read slopes of 0.76 and 1.53 for a slope of 1.
    # (f sums in float64 so that only the step's rounding is under test.)
    x = np.full(3, value, np.float32)

    def f(v):
        return float(v.astype(np.float64).sum())
    assert np.allclose(eval_numerical_gradient(f, x, verbose=False), 1.0, rtol=1e-6)
    assert np.allclose(eval_numerical_gradient_array(lambda v: 2 * v.astype(np.float64), x,
                                                     np.ones(3)), 2.0, rtol=1e-6)
    errors = grad_check_sparse(f, x, np.ones(3, np.float32), num_checks=3, seed=0, verbose=False)
    assert max(errors) < 1e-6
    assert np.array_equal(x, np.full(3, value, np.float32))      # x restored


def test_x_is_restored_when_f_raises():
    x = np.arange(3.0)

    def f(v):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        eval_numerical_gradient(f, x, verbose=False)
    assert np.array_equal(x, np.arange(3.0))


def test_h_true_is_refused():
    with pytest.raises(ValueError, match="h must be a positive finite number, got True"):
        eval_numerical_gradient(lambda v: float(v.sum()), np.ones(2), h=True)


# --- the exact formulas and defaults that every test's tolerance is calibrated against ---

@pytest.mark.parametrize("x, y, expect", [
    (1.0, -1.0, 1.0),                       # |x| + |y| in the denominator, not |x + y| (0 here)
    (2.0, -1.0, 1.0),
    (0.0, 1e-6, 1.0),                       # above the floor: a 100% error however small
    (0.0, 1e-10, 1e-2),                     # below it: 1e-10 / 1e-8
    (1e-9, -1e-9, 0.2),                     # 2e-9 / 1e-8
    (0.0, 0.0, 0.0),
    (1.0, 1.0 + 1e-10, 1e-10 / 2),          # computed in float64: float32 would read 0
    ([1.0, 2.0, 3.0], [1.0, 2.5, -3.0], 1.0),   # the maximum over the entries
    ([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], 0.5 / 4.5),
])
def test_rel_error_is_max_abs_difference_over_floored_sum_of_magnitudes(x, y, expect):
    assert np.isclose(rel_error(np.array(x), np.array(y)), expect, rtol=1e-5, atol=0)


def test_rel_error_sees_a_float64_gradient_that_is_off_by_1e_9(rng):
    g = rng.standard_normal((4, 5))
    assert np.isclose(rel_error(g, g * (1 + 2e-9)), 1e-9, rtol=1e-3)


def _one_entry_quadratic(c):
    """``f(v) = c * sum(v**2)`` at ``x = [1.0]``: the numerical gradient is ``2c`` (exact for a quadratic)."""
    return (lambda v: c * float(np.sum(v ** 2))), np.array([1.0])


@pytest.mark.parametrize("c, k", [
    (1.0, 1.0),
    (1.0, -1.0),                # opposite signs: |num| + |ana| keeps the error at 1, not |num + ana| = 0
    (1.0, 1.5),                 # 0.5 / 2.5, not 0.5 / |num|
    (1e-10, 1.5),               # tiny but above the 1e-12 floor: still a 20% error
    (1e-14, 1.5),               # below the floor: 1e-14 / 1e-12
    (0.0, 0.0),                 # both zero: error 0, not nan
])
def test_grad_check_sparse_error_is_abs_difference_over_floored_sum(c, k):
    f, x = _one_entry_quadratic(c)
    num, ana = 2 * c, 2 * c * k
    expect = abs(num - ana) / max(1e-12, abs(num) + abs(ana))
    errors = grad_check_sparse(f, x, np.array([ana]), num_checks=3, seed=0, verbose=False)
    assert np.allclose(errors, expect, rtol=1e-6, atol=1e-9)     # atol: round-off of num when exact


def test_grad_check_sparse_defaults_to_10_checks_and_returns_one_error_per_check(rng):
    x = rng.standard_normal((4, 4))
    assert len(grad_check_sparse(_loss, x, 2 * x, seed=0, verbose=False)) == 10
    for n in (1, 3, 7):
        assert len(grad_check_sparse(_loss, x, 2 * x, num_checks=n, seed=0, verbose=False)) == n


def _recording(x):
    """``_loss`` that records, at each call, the offset of every entry of v from x as it was."""
    x0, offsets = x.copy(), []

    def f(v):
        offsets.append(np.asarray(v) - x0)
        return _loss(v)
    return f, offsets


@pytest.mark.parametrize("which", ["eval", "array", "sparse"])
def test_default_step_is_1e_5(which, rng):
    x = rng.standard_normal(4)
    f, offsets = _recording(x)
    if which == "eval":
        eval_numerical_gradient(f, x, verbose=False)
    elif which == "array":
        eval_numerical_gradient_array(lambda v: np.array([f(v)]), x, np.ones(1))
    else:
        grad_check_sparse(f, x, 2 * x, num_checks=3, seed=0, verbose=False)
    moved = np.array([d[d != 0] for d in offsets]).ravel()
    assert len(moved) == len(offsets)                     # one entry moved per call
    assert np.allclose(np.abs(moved), 1e-5, rtol=1e-9)


def test_grad_check_sparse_samples_every_index_of_every_axis():
    x = np.zeros((2, 3, 4)) + 0.5
    f, offsets = _recording(x)
    grad_check_sparse(f, x, 2 * x, num_checks=300, seed=0, verbose=False)
    sampled = np.array([np.argwhere(d != 0)[0] for d in offsets])
    for axis, m in enumerate(x.shape):
        assert set(sampled[:, axis]) == set(range(m)), axis     # first and last index included


def test_grad_check_sparse_catches_a_wrong_gradient_in_the_last_entry():
    x = np.linspace(0.5, 1.5, 24).reshape(2, 3, 4)
    ana = 2 * x
    ana[-1, -1, -1] *= 1.1
    assert max(grad_check_sparse(_loss, x, ana, num_checks=200, seed=0, verbose=False)) > 0.04


def test_grad_check_sparse_seed_fixes_the_entries_and_leaves_the_global_stream_alone(rng):
    x = rng.standard_normal((30, 30))
    state = np.random.get_state()
    try:
        runs = []
        for global_seed in (1, 2):
            f, offsets = _recording(x)
            np.random.seed(global_seed)
            before = np.random.get_state()[1].copy()
            grad_check_sparse(f, x, 2 * x, num_checks=4, seed=7, verbose=False)
            assert np.array_equal(np.random.get_state()[1], before)
            runs.append([tuple(np.argwhere(d != 0)[0]) for d in offsets])
    finally:
        np.random.set_state(state)
    assert runs[0] == runs[1]


def test_grad_check_sparse_prints_each_check_by_default(rng, capsys):
    x = rng.standard_normal((3, 3))
    errors = grad_check_sparse(_loss, x, 2 * x, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(errors) == 10
    for line, err in zip(lines, errors):
        m = re.fullmatch(r"numerical: (-?\d+\.\d{6}) analytic: (-?\d+\.\d{6}), relative error: (\S+)", line)
        assert m and m[1] == m[2] and np.isclose(float(m[3]), err)
    grad_check_sparse(_loss, x, 2 * x, seed=0, verbose=False)
    assert capsys.readouterr().out == ""


def test_eval_numerical_gradient_prints_each_index_by_default(capsys):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    grad = eval_numerical_gradient(_loss, x)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(") ")[0] + ")" for line in lines] == ["(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)"]
    assert np.allclose([float(line.split(") ")[1]) for line in lines], grad.ravel())
    eval_numerical_gradient(_loss, x, verbose=False)
    assert capsys.readouterr().out == ""


# --- dtypes, complex steps and what f may return ----------------------------------------

@pytest.mark.parametrize("which", ["eval", "array"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_gradient_has_the_dtype_of_x(which, dtype):
    x = np.array([0.5, -1.5, 2.0], dtype)
    h = 1e-3 if dtype == np.float32 else 1e-5
    if which == "eval":
        grad = eval_numerical_gradient(lambda v: np.sum(v ** 2), x, verbose=False, h=h)
    else:
        grad = eval_numerical_gradient_array(lambda v: v ** 2, x, np.ones(3), h=h)
    assert grad.dtype == dtype


@pytest.mark.parametrize("f", [
    lambda v: np.sum(v ** 2),                   # a NumPy complex scalar
    lambda v: complex(np.sum(v ** 2)),          # a Python complex
], ids=["np-complex", "py-complex"])
def test_complex_x_gets_the_derivative_of_a_holomorphic_f(f):
    # the step is along the real axis; for an analytic f its quotient is f'(x), complex
    x = np.array([1.0 + 2.0j, -0.5 + 0.25j])
    x0 = x.copy()
    assert rel_error(eval_numerical_gradient(f, x, verbose=False).view(np.float64),
                     (2 * x0).view(np.float64)) < 1e-9
    assert rel_error(eval_numerical_gradient_array(lambda v: np.array([f(v)]), x, np.ones(1))
                     .view(np.float64), (2 * x0).view(np.float64)) < 1e-9
    assert max(grad_check_sparse(f, x, 2 * x0, num_checks=4, seed=0, verbose=False)) < 1e-9
    assert np.array_equal(x, x0)


@pytest.mark.parametrize("which", ["eval", "sparse"])
def test_a_python_int_loss_is_a_scalar(which):
    # a loss that counts (a step function) returns an int; its gradient off the steps is 0
    def f(v):
        return int(np.sum(v > 0))
    x = np.array([0.5, -1.5, 2.0])
    if which == "eval":
        assert np.array_equal(eval_numerical_gradient(f, x, verbose=False), np.zeros(3))
    else:
        assert grad_check_sparse(f, x, np.zeros(3), num_checks=3, seed=0, verbose=False) == [0.0] * 3


@pytest.mark.parametrize("f", [
    lambda v: v,                                # identity: the output is x itself
    lambda v: v.reshape(-1),                    # a flatten layer: a view of x
    lambda v: v.T,
], ids=["identity", "reshape", "transpose"])
def test_array_checker_copies_an_output_that_is_a_view_of_x(f, rng):
    # x is perturbed in place, so a view read after both steps would give pos == neg and 0
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal(f(x).shape)
    grad = eval_numerical_gradient_array(f, x, df)
    expect = eval_numerical_gradient_array(lambda v: np.array(f(v)), x.copy(), df)
    assert rel_error(grad, expect) < 1e-9 and np.abs(grad).min() > 0


@pytest.mark.parametrize("f", [
    lambda v: None,
    lambda v: {"out": v},
    lambda v: (float(np.sum(v)), {"cache": v}),     # a (scalar out, cache) tuple
], ids=["None", "dict", "scalar-and-cache"])
def test_array_checker_refuses_an_output_that_is_not_an_array(f):
    with pytest.raises(ValueError, match=r"f must return the output array .*\[0\]"):
        eval_numerical_gradient_array(f, np.array([1.0, 2.0]), np.ones(2))


def test_array_checker_refuses_a_tensor_numpy_cannot_read():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"f must return the output array .*BFloat16"):
        eval_numerical_gradient_array(lambda v: torch.from_numpy(v).to(torch.bfloat16), np.ones(2),
                                      np.ones(2))
