import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite.fully_connected_net import FullyConnectedNet, TwoLayerNet
from deep_learning_suite.optim import adam
from deep_learning_suite.utils import eval_numerical_gradient

# The course's check uses N = 2; batch norm over 2 samples makes xhat = +-1 whatever W1 is,
# so the W1 gradient nearly vanishes and its relative error measures rounding only. N = 5 keeps
# every gradient well away from zero so a tight tolerance means something.
N, D, H1, H2, C = 5, 15, 20, 30, 10


def _data(rng, n=N):
    return rng.standard_normal((n, D)), rng.integers(C, size=n)


def _scaled_error(analytic, numeric):
    """max |a - n| / max |n|: relative to the gradient's size.

    The course's elementwise ``rel_error`` reads rounding noise on entries that are
    0 in theory (dead ReLUs, cancellations) as 100% errors, so it cannot be held to a
    tight bound across a whole net; this measure can.
    """
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(numeric)), 1e-12))


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("reg", [0.0, 3.14])
@pytest.mark.parametrize("keep", [1, 0.5])
def test_gradients_match_numerical(rng, normalization, reg, keep):
    X, y = _data(rng)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, normalization=normalization, reg=reg,
                              weight_scale=5e-2, dtype=np.float64, seed=3, dropout_keep_ratio=keep)
    # Zero biases put a sample whose hidden units all drop out exactly on a ReLU kink.
    for i in (1, 2, 3):
        model.params[f"b{i}"] += 0.1 * rng.standard_normal(model.params[f"b{i}"].shape)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(model.params):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        assert grads[name].shape == model.params[name].shape
        if normalization == "batchnorm" and name in ("b1", "b2"):
            # A bias before batch norm is removed with the mean: its gradient is exactly 0.
            assert np.max(np.abs(grads[name])) < 1e-12 and np.max(np.abs(num)) < 1e-8
            continue
        assert _scaled_error(grads[name], num) < 1e-7, name


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_loss_and_gradients_match_torch(rng, normalization):
    X, y = _data(rng, n=8)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, normalization=normalization, reg=0.7,
                              weight_scale=1e-1, dtype=np.float64, seed=0)
    # Non-trivial scales and shifts so the norm parameters are exercised.
    for i in (1, 2):
        if normalization:
            model.params[f"gamma{i}"] += rng.standard_normal(model.params[f"gamma{i}"].shape) * 0.3
            model.params[f"beta{i}"] += rng.standard_normal(model.params[f"beta{i}"].shape) * 0.3
    loss, grads = model.loss(X, y)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(X)
    for i in (1, 2):
        h = h @ t[f"W{i}"] + t[f"b{i}"]
        if normalization == "batchnorm":
            h = F.batch_norm(h, None, None, t[f"gamma{i}"], t[f"beta{i}"], training=True, eps=1e-5)
        elif normalization == "layernorm":
            h = F.layer_norm(h, h.shape[1:], t[f"gamma{i}"], t[f"beta{i}"], eps=1e-5)
        h = torch.relu(h)
    scores = h @ t["W3"] + t["b3"]
    tloss = F.cross_entropy(scores, torch.tensor(y)) + 0.5 * 0.7 * sum((t[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    for name, value in grads.items():
        if normalization == "batchnorm" and name in ("b1", "b2"):
            # Exactly 0 in theory; both sides hold rounding noise only.
            assert np.max(np.abs(value)) < 1e-12 and np.max(np.abs(t[name].grad.numpy())) < 1e-12
            continue
        assert _scaled_error(value, t[name].grad.numpy()) < 1e-10, name


def test_initial_loss_is_log_num_classes_for_small_weights(rng):
    X, y = _data(rng, n=200)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=1e-2, dtype=np.float64, seed=0)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(C)) < 1e-3


def test_initial_loss_reproduces_the_course_notebook_output():
    # The FullyConnectedNets notebook's "initial loss and gradient check", with the reference
    # solution's printed losses: without a seed the weights are drawn from the global stream,
    # W1 then W2 then W3, each weight_scale * np.random.randn(fan_in, fan_out).
    state = np.random.get_state()
    try:
        np.random.seed(231)
        N, D_, H1_, H2_, C_ = 2, 15, 20, 30, 10
        X = np.random.randn(N, D_)
        y = np.random.randint(C_, size=(N,))
        for reg, printed in ((0, 2.3004790897684924), (3.14, 7.052114776533016)):
            model = FullyConnectedNet([H1_, H2_], input_dim=D_, num_classes=C_, reg=reg, weight_scale=5e-2,
                                      dtype=np.float64)
            loss, grads = model.loss(X, y)
            assert abs(loss - printed) < 1e-12
            assert set(grads) == set(model.params)
    finally:
        np.random.set_state(state)


def test_reg_penalty_and_reg_set_after_construction(rng):
    X, y = _data(rng)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, dtype=np.float64, seed=1, weight_scale=0.1)
    loss0, grads0 = model.loss(X, y)
    model.reg = 2.5
    loss1, grads1 = model.loss(X, y)
    penalty = 0.5 * 2.5 * sum(np.sum(model.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert loss1 == pytest.approx(loss0 + penalty, rel=1e-12)
    for name in grads0:
        extra = 2.5 * model.params[name] if name.startswith("W") else 0
        assert np.allclose(grads1[name], grads0[name] + extra, rtol=1e-12, atol=1e-15), name


def _overfit(X, y, hidden_dims, weight_scale, iters=200):
    model = FullyConnectedNet(hidden_dims, input_dim=X[0].size, num_classes=C, weight_scale=weight_scale,
                              dtype=np.float64, seed=1)
    configs = {name: {"learning_rate": 1e-2} for name in model.params}
    for _ in range(iters):
        _, grads = model.loss(X, y)
        for name in model.params:
            model.params[name], configs[name] = adam(model.params[name], grads[name], configs[name])
        if np.all(model.loss(X).argmax(axis=1) == y):
            break
    return np.mean(model.loss(X).argmax(axis=1) == y)


@pytest.mark.parametrize("hidden_dims, weight_scale", [([100, 100], 1e-2), ([100, 100, 100, 100], 5e-2)])
def test_three_and_five_layer_nets_overfit_fifty_samples(hidden_dims, weight_scale):
    # Random images with random labels: memorising them takes the whole network working.
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 3, 8, 8)), rng.integers(C, size=50)
    assert _overfit(X, y, hidden_dims, weight_scale) == 1.0


def test_use_batchnorm_flag_equals_normalization_batchnorm(rng):
    X, y = _data(rng)
    a = FullyConnectedNet([H1, H2], input_dim=D, use_batchnorm=True, dtype=np.float64, seed=4)
    b = FullyConnectedNet([H1, H2], input_dim=D, normalization="batchnorm", dtype=np.float64, seed=4)
    assert a.normalization == b.normalization == "batchnorm"
    assert set(a.params) == set(b.params)
    la, ga = a.loss(X, y)
    lb, gb = b.loss(X, y)
    assert la == lb and all(np.array_equal(ga[k], gb[k]) for k in ga)


def test_parameter_names_shapes_and_init():
    model = FullyConnectedNet([4, 6], input_dim=3, num_classes=5, normalization="layernorm", seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (3, 4), "b1": (4,), "gamma1": (4,), "beta1": (4,), "W2": (4, 6), "b2": (6,),
                      "gamma2": (6,), "beta2": (6,), "W3": (6, 5), "b3": (5,)}
    assert np.all(model.params["gamma1"] == 1) and np.all(model.params["beta2"] == 0)
    assert np.all(model.params["b3"] == 0)
    assert all(v.dtype == np.float32 for v in model.params.values())
    big = FullyConnectedNet([300], input_dim=400, weight_scale=0.5, seed=0)
    assert abs(big.params["W1"].std() - 0.5) < 0.01 and abs(big.params["W1"].mean()) < 0.01
    assert len(FullyConnectedNet([], input_dim=3).params) == 2  # a linear softmax classifier


@pytest.mark.parametrize("kwargs, msg", [
    ({"normalization": "groupnorm"}, "normalization must be one of"),
    ({"normalization": "layernorm", "use_batchnorm": True}, "give only one"),
    ({"dropout_keep_ratio": 0}, "KEEPING"),
    ({"dropout_keep_ratio": 1.2}, "KEEPING"),
])
def test_rejects_bad_options(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        FullyConnectedNet([5], input_dim=3, **kwargs)


def test_rejects_bad_dims():
    with pytest.raises(ValueError, match="positive integers"):
        FullyConnectedNet([5, 0], input_dim=3)


@pytest.mark.parametrize("kwargs, msg", [
    ({"dropout_keep_ratio": "0.5"}, r"dropout_keep_ratio must be a finite number, got '0.5'"),
    ({"dropout_keep_ratio": None}, r"dropout_keep_ratio must be a finite number, got None"),
    ({"dropout_keep_ratio": float("nan")}, r"dropout_keep_ratio must be a finite number"),
    ({"dropout": "0.5"}, r"dropout must be a finite number, got '0.5'"),
    ({"weight_scale": "1e-3"}, r"weight_scale must be a finite number >= 0, got '1e-3'"),
    ({"weight_scale": None}, r"weight_scale must be a finite number >= 0, got None"),
    ({"weight_scale": -1e-3}, r"weight_scale must be a finite number >= 0"),
    ({"weight_scale": float("inf")}, r"weight_scale must be a finite number >= 0"),
])
def test_rejects_options_that_are_not_numbers(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        FullyConnectedNet([5], input_dim=3, **kwargs)


@pytest.mark.parametrize("hidden_dims", [5, None, "100", np.array(5)])
def test_rejects_hidden_dims_that_are_not_a_list(hidden_dims):
    with pytest.raises(ValueError, match=r"hidden_dims must be a list of hidden-layer widths.*\[5\]"):
        FullyConnectedNet(hidden_dims, input_dim=10)


def test_hidden_dims_may_be_any_sequence_of_ints():
    shapes = [{k: v.shape for k, v in FullyConnectedNet(dims, input_dim=4, num_classes=3, seed=0).params.items()}
              for dims in ([6, 5], (6, 5), np.array([6, 5]), range(6, 4, -1))]
    assert all(s == shapes[0] for s in shapes)
    # A zero weight scale (all-zero weights) is a valid experiment.
    assert not np.any(FullyConnectedNet([5], input_dim=3, weight_scale=0).params["W1"])


@pytest.mark.parametrize("x_shape", [(2, 11), (2, 9), (2, 2, 6), (10,)])
def test_loss_names_the_input_dim_when_x_has_the_wrong_size(x_shape):
    model = FullyConnectedNet([5], input_dim=10, num_classes=3, seed=0)
    for y in (None, np.zeros(x_shape[0], dtype=int)):
        with pytest.raises(ValueError, match=rf"FullyConnectedNet expects X .* input_dim = 10.*got X of shape "
                                             rf"\({x_shape[0]},"):
            model.loss(np.ones(x_shape), y)


def test_loss_flattens_each_sample_like_the_course():
    # (N, d_1, ..., d_k) with d_1 * ... * d_k = input_dim is accepted, as in the course.
    model = FullyConnectedNet([5], input_dim=12, num_classes=3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    assert np.array_equal(model.loss(x), model.loss(x.reshape(4, 12)))


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_float32_model_gives_float32(rng, normalization):
    X, y = _data(rng)
    model = FullyConnectedNet([H1, H2], input_dim=D, normalization=normalization, dropout_keep_ratio=0.7, seed=0)
    assert model.loss(X).dtype == np.float32
    loss, grads = model.loss(X, y)
    assert np.asarray(loss).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_params_is_the_dict_loss_reads(rng):
    X, _ = _data(rng)
    model = FullyConnectedNet([H1], input_dim=D, dtype=np.float64, seed=0)
    before = model.loss(X)
    model.params["b2"][3] += 1.0  # in place, as the gradient checker does
    after = model.loss(X)
    assert np.allclose(after[:, 3], before[:, 3] + 1.0) and np.allclose(np.delete(after, 3, 1), np.delete(before, 3, 1))


def test_test_mode_uses_running_stats_and_no_dropout(rng):
    X, y = _data(rng, n=32)
    model = FullyConnectedNet([H1, H2], input_dim=D, normalization="batchnorm", dropout_keep_ratio=0.5,
                              dtype=np.float64, seed=0)
    model.loss(X, y)  # a training step fills the running averages
    assert all(np.any(p["running_mean"] != 0) for p in model.bn_params)
    assert all(p["mode"] == "train" for p in model.bn_params) and model.dropout_param["mode"] == "train"
    scores = model.loss(X)
    assert all(p["mode"] == "test" for p in model.bn_params) and model.dropout_param["mode"] == "test"
    # Test mode: each sample's scores do not depend on the rest of the batch or on a mask.
    assert np.allclose(model.loss(X[:1]), scores[:1], rtol=1e-12)
    np.random.seed(0)
    assert np.array_equal(model.loss(X), scores)


def test_seeded_dropout_is_reproducible_and_unseeded_follows_np_random(rng):
    X, y = _data(rng)
    a = FullyConnectedNet([H1], input_dim=D, dropout_keep_ratio=0.5, dtype=np.float64, seed=9)
    assert a.dropout_param == {"mode": "train", "p": 0.5, "seed": 9}
    assert a.loss(X, y)[0] == a.loss(X, y)[0]
    np.random.seed(11)
    b = FullyConnectedNet([H1], input_dim=D, dropout_keep_ratio=0.5, dtype=np.float64)
    np.random.seed(11)
    c = FullyConnectedNet([H1], input_dim=D, dropout_keep_ratio=0.5, dtype=np.float64)
    assert np.array_equal(b.params["W1"], c.params["W1"])
    assert "seed" not in b.dropout_param
    assert FullyConnectedNet([H1], input_dim=D, dropout_keep_ratio=1).dropout_param == {}


def _kept_units(grads, num_hidden):
    """Which hidden units each layer's dropout kept, read from the bias gradients (one sample, live ReLUs)."""
    return [grads[f"b{i}"] != 0 for i in range(1, num_hidden + 1)]


def test_seeded_dropout_drops_different_units_in_each_layer_and_the_same_at_every_call():
    # Three hidden layers of one width: with one seed for all of them every layer dropped the
    # same units. Biases of 10 keep every ReLU open, so a bias gradient is 0 exactly where
    # its unit was dropped.
    width = 40
    model = FullyConnectedNet([width] * 3, input_dim=D, num_classes=C, dropout_keep_ratio=0.5,
                              weight_scale=1e-2, dtype=np.float64, seed=4)
    for i in (1, 2, 3):
        model.params[f"b{i}"][:] = 10.0
    X, y = np.ones((1, D)), np.array([2])
    kept = _kept_units(model.loss(X, y)[1], 3)
    assert all(0 < k.sum() < width for k in kept)
    assert not np.array_equal(kept[0], kept[1]) and not np.array_equal(kept[1], kept[2])
    assert not np.array_equal(kept[0], kept[2])
    again = _kept_units(model.loss(X, y)[1], 3)
    assert all(np.array_equal(a, b) for a, b in zip(kept, again))


def test_seed_gives_reproducible_weights_without_touching_global_state():
    np.random.seed(0)
    expected = np.random.random_sample(2)
    np.random.seed(0)
    a = FullyConnectedNet([7], input_dim=4, seed=5)
    assert np.array_equal(np.random.random_sample(2), expected)
    b = FullyConnectedNet([7], input_dim=4, seed=5)
    assert np.array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], FullyConnectedNet([7], input_dim=4, seed=6).params["W1"])


# ------------------------------------------------------------------ TwoLayerNet


def test_two_layer_net_passes_the_course_notebook_checks():
    # The checks of CS231n's two-layer-net notebook, with its numbers.
    N2, D2, H, C2, std = 3, 5, 50, 7, 1e-3
    model = TwoLayerNet(input_dim=D2, hidden_dim=H, num_classes=C2, weight_scale=std)
    assert sorted(model.params) == ["W1", "W2", "b1", "b2"]
    assert model.params["W1"].shape == (D2, H) and model.params["W2"].shape == (H, C2)
    assert abs(model.params["W1"].std() - std) < std / 10
    assert abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)

    model.params["W1"] = np.linspace(-0.7, 0.3, num=D2 * H).reshape(D2, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C2).reshape(H, C2)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C2)
    X = np.linspace(-5.5, 4.5, num=N2 * D2).reshape(D2, N2).T
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765, 16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135, 16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506, 16.2846319]])
    assert np.abs(model.loss(X) - correct_scores).sum() < 1e-6
    y = np.asarray([0, 5, 1])
    loss, _ = model.loss(X, y)
    assert abs(loss - 3.4702243556) < 1e-10
    model.reg = 1.0
    loss, _ = model.loss(X, y)
    assert abs(loss - 26.5948426952) < 1e-10


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients_match_numerical(rng, reg):
    X, y = _data(rng)
    model = TwoLayerNet(input_dim=D, hidden_dim=H1, num_classes=C, weight_scale=1e-1, reg=reg,
                        seed=0)
    model.params["b1"] += 0.1 * rng.standard_normal(H1)  # keep units off the ReLU kink
    loss, grads = model.loss(X, y)
    for name in sorted(grads):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                          verbose=False, h=1e-6)
        assert _scaled_error(grads[name], numeric) < 1e-7, name


def test_two_layer_net_is_the_one_hidden_layer_fully_connected_net(rng):
    X, y = _data(rng)
    a = TwoLayerNet(input_dim=D, hidden_dim=H1, num_classes=C, weight_scale=1e-1, reg=0.3, seed=5)
    b = FullyConnectedNet([H1], input_dim=D, num_classes=C, weight_scale=1e-1, reg=0.3,
                          dtype=np.float64, seed=5)
    (la, ga), (lb, gb) = a.loss(X, y), b.loss(X, y)
    assert la == lb and all(np.array_equal(ga[k], gb[k]) for k in gb)
    assert a.params["W1"].dtype == np.float64
    f32 = TwoLayerNet(input_dim=D, hidden_dim=H1, num_classes=C, dtype=np.float32)
    assert f32.loss(X).dtype == np.float32


def test_older_dropout_argument_is_the_keep_ratio(rng):
    X, y = _data(rng)
    old = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, dropout=0.75, dtype=np.float64, seed=3)
    new = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, dropout_keep_ratio=0.75, dtype=np.float64, seed=3)
    assert old.dropout_param == new.dropout_param == {"mode": "train", "p": 0.75, "seed": 3}
    assert old.loss(X, y)[0] == new.loss(X, y)[0]
    assert not FullyConnectedNet([H1], input_dim=D, num_classes=C, dropout=1).use_dropout
    with pytest.raises(ValueError, match="two names for the same keep probability"):
        FullyConnectedNet([H1], input_dim=D, num_classes=C, dropout=0.5, dropout_keep_ratio=0.75)
    with pytest.raises(ValueError, match="use dropout=1 for no dropout"):
        FullyConnectedNet([H1], input_dim=D, num_classes=C, dropout=0)


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
def test_numpy_scalar_reg_keeps_a_float32_loss(normalization):
    # np.float64 reg (from np.logspace) would promote the loss of a float32 model under NumPy 2.
    rng = np.random.default_rng(0)
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, normalization=normalization,
                              reg=np.logspace(-3, -1, 3)[1], dtype=np.float32, seed=0)
    loss, grads = model.loss(rng.standard_normal((7, 4)).astype(np.float32), rng.integers(0, 3, 7))
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("reg", [-0.1, float("nan"), "0.1", None])
def test_bad_reg_is_refused_when_the_loss_reads_it(reg):
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=0)
    model.reg = reg
    with pytest.raises(ValueError, match="reg must be a finite number >= 0"):
        model.loss(np.ones((2, 4)), np.array([0, 1]))


def test_constructor_defaults_are_the_courses():
    # API.md: input_dim 3*32*32, num_classes 10, weight_scale 1e-2; TwoLayerNet's weight_scale 1e-3.
    np.random.seed(0)
    net = FullyConnectedNet([200])
    assert net.params["W1"].shape == (3 * 32 * 32, 200) and net.params["W2"].shape == (200, 10)
    assert np.std(net.params["W1"]) == pytest.approx(1e-2, rel=0.05)
    two = TwoLayerNet()
    assert np.std(two.params["W1"]) == pytest.approx(1e-3, rel=0.05)
