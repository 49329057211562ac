import numpy as np
import pytest
import torch

from deep_learning_suite.optim import adam, adamw, nesterov_momentum, rmsprop, sgd, sgd_momentum
from deep_learning_suite.utils import rel_error

STEPS = 10

# rule, its config, and the torch.optim optimiser that should take the same steps.
CASES = {
    "sgd": (sgd, {"learning_rate": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05)),
    "sgd_momentum": (sgd_momentum, {"learning_rate": 0.05, "momentum": 0.8},
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8)),
    "nesterov_momentum": (nesterov_momentum, {"learning_rate": 0.05, "momentum": 0.7},
                          lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.7, nesterov=True)),
    "rmsprop": (rmsprop, {"learning_rate": 0.01, "decay_rate": 0.95, "epsilon": 1e-6},
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-6)),
    "adam": (adam, {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
             lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-7)),
    "adamw": (adamw, {"learning_rate": 0.02, "weight_decay": 0.3},
              lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.3)),
}
# torch's own defaults for the rules whose defaults coincide with API.md's.
DEFAULT_CASES = {
    "sgd_momentum": (sgd_momentum, lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)),
    "rmsprop": (rmsprop, lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8)),
    "adam": (adam, lambda p: torch.optim.Adam(p)),
    "adamw": (adamw, lambda p: torch.optim.AdamW(p)),
}


def _grad(w, target):
    # A non-quadratic loss sum(w**4 / 4 - target * w), so the gradient changes along the trajectory.
    return w**3 - target


def _compare_with_torch(rng, rule, config, make_torch_opt, shape):
    w = rng.standard_normal(shape)
    target = rng.standard_normal(shape)
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt = make_torch_opt([tw])
    for step in range(STEPS):
        w, config = rule(w, _grad(w, target), config)
        tw.grad = torch.tensor(_grad(tw.detach().numpy(), target))
        opt.step()
        assert rel_error(w, tw.detach().numpy()) < 1e-10, f"step {step + 1}"
    return w


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
def test_rule_matches_torch_optim_step_by_step(rng, name, shape):
    rule, config, make_opt = CASES[name]
    w0 = rng.standard_normal(shape)  # moves the stream so each shape starts differently
    w = _compare_with_torch(rng, rule, dict(config), make_opt, shape)
    assert not np.allclose(w, w0)


@pytest.mark.parametrize("name", sorted(DEFAULT_CASES))
def test_rule_defaults_match_torch(rng, name):
    rule, make_opt = DEFAULT_CASES[name]
    _compare_with_torch(rng, rule, None, make_opt, (4, 3))


def test_defaults_are_the_api_values():
    w, dw = np.ones(3), np.ones(3)
    assert sgd(w, dw)[1] == {"learning_rate": 1e-2}
    expected = {
        sgd_momentum: {"learning_rate": 1e-2, "momentum": 0.9},
        nesterov_momentum: {"learning_rate": 1e-2, "momentum": 0.9},
        rmsprop: {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
        adam: {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1},
        adamw: {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1,
                "weight_decay": 1e-2},
    }
    state = {sgd_momentum: {"velocity"}, nesterov_momentum: {"velocity"}, rmsprop: {"cache"},
             adam: {"m", "v"}, adamw: {"m", "v"}}
    for rule, want in expected.items():
        _, config = rule(w, dw)
        assert set(config) == set(want) | state[rule], rule.__name__
        for key, value in want.items():
            assert config[key] == value, (rule.__name__, key)


def _notebook_arrays(*ranges):
    """The course notebook's 4x5 linspace inputs: w, dw and the rule's state."""
    return [np.linspace(lo, hi, num=20).reshape(4, 5) for lo, hi in ranges]


def test_sgd_momentum_matches_course_values():
    # The FullyConnectedNets notebook's check ("relative errors around e-8 or less").
    w, dw, v = _notebook_arrays((-0.4, 0.6), (-0.6, 0.4), (0.6, 0.9))
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, _ = sgd_momentum(w, dw, config=config)
    expected_next_w = np.array([
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
        [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
        [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]])
    expected_velocity = np.array([
        [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
        [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
        [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
        [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])
    assert rel_error(next_w, expected_next_w) < 1e-8
    assert rel_error(expected_velocity, config["velocity"]) < 1e-8


def test_rmsprop_matches_course_values():
    # The FullyConnectedNets notebook's check, with the default decay_rate 0.99 and epsilon 1e-8.
    w, dw, cache = _notebook_arrays((-0.4, 0.6), (-0.6, 0.4), (0.6, 0.9))
    config = {"learning_rate": 1e-2, "cache": cache}
    next_w, _ = rmsprop(w, dw, config=config)
    expected_next_w = np.array([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.array([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    assert rel_error(expected_next_w, next_w) < 1e-7
    assert rel_error(expected_cache, config["cache"]) < 1e-7


def test_adam_matches_course_values():
    # The FullyConnectedNets notebook's check ("relative errors around e-7 or less"). With
    # t = 5 the expected step is only reached if t becomes 6 before the bias correction.
    w, dw, m, v = _notebook_arrays((-0.4, 0.6), (-0.6, 0.4), (0.6, 0.9), (0.7, 0.5))
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}
    next_w, _ = adam(w, dw, config=config)
    expected_next_w = np.array([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_v = np.array([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_m = np.array([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    # 1.1e-7, as the course's own solution prints: the expected 0.01971428 is 0.0197142755
    # rounded to 8 decimals. Skipping the t increment would be off by 1e-3.
    assert rel_error(expected_next_w, next_w) < 2e-7
    assert rel_error(expected_v, config["v"]) < 1e-7
    assert rel_error(expected_m, config["m"]) < 1e-7
    assert config["t"] == 6


def test_user_config_is_kept_and_filled(rng):
    config = {"learning_rate": 0.5}
    _, out = adam(np.ones(2), np.ones(2), config)
    assert out is config and config["learning_rate"] == 0.5 and config["beta1"] == 0.9


def test_sgd_formula_and_w_untouched(rng):
    w, dw = rng.standard_normal(5), rng.standard_normal(5)
    w0 = w.copy()
    next_w, _ = sgd(w, dw, {"learning_rate": 0.3})
    assert np.array_equal(w, w0)
    assert np.allclose(next_w, w0 - 0.3 * dw, rtol=0, atol=1e-15)


def test_nesterov_matches_hand_derived_steps(rng):
    # Two steps of v_prev = v; v = mu v - lr dw; w += -mu v_prev + (1 + mu) v, written out.
    lr, mu = 0.1, 0.9
    w, g1, g2 = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    w1, config = nesterov_momentum(w, g1, {"learning_rate": lr, "momentum": mu})
    v1 = -lr * g1
    assert np.allclose(w1, w + (1 + mu) * v1, rtol=0, atol=1e-15)
    w2, config = nesterov_momentum(w1, g2, config)
    v2 = mu * v1 - lr * g2
    assert np.allclose(w2, w1 - mu * v1 + (1 + mu) * v2, rtol=0, atol=1e-15)
    assert np.allclose(config["velocity"], v2, rtol=0, atol=1e-15)


def test_adam_first_step_has_size_learning_rate(rng):
    # Bias correction makes m_hat / sqrt(v_hat) = sign(dw) at t = 1.
    w, dw = rng.standard_normal(10), rng.standard_normal(10)
    next_w, config = adam(w, dw, {"learning_rate": 0.01, "epsilon": 0.0})
    assert np.allclose(next_w - w, -0.01 * np.sign(dw), rtol=1e-12)
    assert config["t"] == 1
    _, config = adam(next_w, dw, config)
    assert config["t"] == 2


def test_adamw_without_decay_is_adam(rng):
    w, dw = rng.standard_normal(6), rng.standard_normal(6)
    a, ca = adam(w, dw, {"learning_rate": 0.1})
    b, cb = adamw(w, dw, {"learning_rate": 0.1, "weight_decay": 0.0})
    assert np.array_equal(a, b) and np.array_equal(ca["m"], cb["m"])
    c, _ = adamw(w, dw, {"learning_rate": 0.1, "weight_decay": 0.5})
    # Decoupled: the decay shrinks w by lr * wd * w on top of the same Adam step.
    assert np.allclose(c, a - 0.1 * 0.5 * w, rtol=0, atol=1e-14)


@pytest.mark.parametrize("rule", [sgd, sgd_momentum, nesterov_momentum, rmsprop, adam, adamw])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_in_weights_and_state(rng, rule, dtype):
    w = rng.standard_normal((3, 2)).astype(dtype)
    config = None
    for _ in range(2):
        w, config = rule(w, (w * 0.5).astype(dtype), config)
        assert w.dtype == dtype
        for value in config.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype


@pytest.mark.parametrize("rule", [sgd, sgd_momentum, nesterov_momentum, rmsprop, adam, adamw])
def test_rejects_mismatched_shapes(rng, rule):
    with pytest.raises(ValueError, match=r"w has shape \(3, 2\) but dw has shape \(2, 3\)"):
        rule(np.ones((3, 2)), np.ones((2, 3)))


@pytest.mark.parametrize("rule, key", [(sgd_momentum, "velocity"), (rmsprop, "cache"), (adam, "m")])
def test_rejects_state_of_another_parameter(rng, rule, key):
    _, config = rule(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=f"config\\['{key}'\\] has shape \\(3,\\)"):
        rule(np.ones(4), np.ones(4), config)


RULES = [sgd, sgd_momentum, nesterov_momentum, rmsprop, adam, adamw]
HYPER = ["learning_rate", "momentum", "decay_rate", "epsilon", "beta1", "beta2", "weight_decay"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("scalar", [np.float64, np.float32, np.longdouble])
def test_numpy_scalar_hyperparameters_keep_float32(rng, rule, scalar):
    # np.logspace(...)[i] is an np.float64; under NumPy 2 it would promote float32 weights.
    w = rng.standard_normal((3, 2)).astype(np.float32)
    dw = rng.standard_normal((3, 2)).astype(np.float32)
    _, defaults = rule(w, dw)
    hyper = {k: v for k, v in defaults.items() if k in HYPER}
    config, plain = {k: scalar(v) for k, v in hyper.items()}, dict(hyper)
    a = b = w
    for _ in range(2):
        a, config = rule(a, dw, config)
        b, plain = rule(b, dw, plain)
        assert a.dtype == np.float32
        assert all(v.dtype == np.float32 for v in config.values() if isinstance(v, np.ndarray))
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("bad", ["0.01", None, [0.01], float("nan"), float("inf")])
def test_rejects_hyperparameter_that_is_not_a_finite_number(rule, bad):
    with pytest.raises(ValueError, match=r"config\['learning_rate'\]"):
        rule(np.ones(3), np.ones(3), {"learning_rate": bad})


@pytest.mark.parametrize("rule, key", [(sgd_momentum, "velocity"), (rmsprop, "cache"), (adam, "m")])
def test_rejects_state_of_another_dtype(rule, key):
    _, config = rule(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=f"config\\['{key}'\\] is float64 but w is float32"):
        rule(np.ones(3, np.float32), np.ones(3, np.float32), config)


@pytest.mark.parametrize("rule, key, value, interval", [
    (sgd, "learning_rate", -1e-3, ">= 0"),
    (adam, "learning_rate", -1e-3, ">= 0"),
    (sgd_momentum, "momentum", -0.1, r"in \[0, 1\]"),
    (sgd_momentum, "momentum", 1.5, r"in \[0, 1\]"),
    (nesterov_momentum, "momentum", 2.0, r"in \[0, 1\]"),
    (rmsprop, "decay_rate", 1.0, r"in \[0, 1\)"),       # the cache stays 0: steps of lr * dw / eps
    (rmsprop, "decay_rate", -0.1, r"in \[0, 1\)"),
    (rmsprop, "epsilon", -1e-8, ">= 0"),
    (adam, "epsilon", -1e-8, ">= 0"),
    (adam, "beta1", 1.0, r"in \[0, 1\)"),              # was NaN: the bias correction divides by 0
    (adam, "beta1", 1.5, r"in \[0, 1\)"),              # was a silently wrong step
    (adam, "beta1", -0.1, r"in \[0, 1\)"),
    (adam, "beta2", 1.0, r"in \[0, 1\)"),
    (adamw, "beta2", 1.0, r"in \[0, 1\)"),
    (adamw, "weight_decay", -1e-2, ">= 0"),
])
def test_rejects_impossible_hyperparameters(rule, key, value, interval):
    w = np.ones(3)
    with pytest.raises(ValueError, match=rf"config\['{key}'\] must be a finite number {interval}, got {value}"):
        rule(w, np.array([1.0, 0.0, -1.0]), {key: value})
    assert np.array_equal(w, np.ones(3))


@pytest.mark.parametrize("rule, config", [
    (sgd, {"learning_rate": 0.0}),
    (sgd_momentum, {"learning_rate": 5e-3, "momentum": 0.9}),        # the course's settings
    (sgd_momentum, {"learning_rate": 0, "momentum": 0.0}),
    (nesterov_momentum, {"momentum": 1.0}),
    (rmsprop, {"learning_rate": 1e-4, "decay_rate": 0.99}),
    (rmsprop, {"decay_rate": 0.0, "epsilon": 0.0}),
    (adam, {"learning_rate": 1e-2, "beta1": 0.9, "beta2": 0.999}),
    (adam, {"beta1": 0.0, "beta2": 0.0, "epsilon": 0.0}),            # torch.optim allows eps = 0 too
    (adam, {"beta1": np.float32(0.999), "beta2": np.float32(0.9999)}),
    (adamw, {"weight_decay": 0.0, "learning_rate": 0.0}),
])
def test_accepts_every_setting_inside_the_bounds(rule, config):
    w, config = rule(np.ones(3), np.array([1.0, 0.5, -1.0]), dict(config))
    w, _ = rule(w, np.array([1.0, 0.5, -1.0]), config)
    assert np.all(np.isfinite(w))
