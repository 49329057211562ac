import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite.cnn_model import ThreeLayerConvNet
from deep_learning_suite.optim import adam
from deep_learning_suite.utils import eval_numerical_gradient, rel_error


def tiny_model(input_dim=(3, 6, 6), filter_size=3, reg=0.0, dtype=np.float64):
    return ThreeLayerConvNet(input_dim=input_dim, num_filters=3, filter_size=filter_size, hidden_dim=7,
                             num_classes=4, weight_scale=0.3, reg=reg, dtype=dtype, seed=0)


@pytest.mark.parametrize("reg", [0.0, 0.7])
@pytest.mark.parametrize("input_dim, filter_size", [((3, 6, 6), 3), ((2, 7, 5), 3), ((1, 6, 6), 4)])
def test_gradients_match_numerical(rng, reg, input_dim, filter_size):
    # (2, 7, 5): odd H and W, the pool drops the last row/column; filter 4: conv output 5x5.
    model = tiny_model(input_dim, filter_size, reg)
    X = rng.standard_normal((2, *input_dim))
    y = rng.integers(4, size=2)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(model.params):
        # f reads model.params[name], the very array the checker perturbs in place.
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        assert grads[name].shape == model.params[name].shape
        assert rel_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("input_dim, filter_size", [((3, 8, 8), 3), ((1, 9, 7), 5), ((2, 8, 8), 4)])
def test_matches_torch(rng, input_dim, filter_size):
    model = tiny_model(input_dim, filter_size, reg=0.3)
    X = rng.standard_normal((5, *input_dim))
    y = rng.integers(4, size=5)
    loss, grads = model.loss(X, y)
    scores = model.loss(X)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    pad = (filter_size - 1) // 2
    a = torch.relu(F.conv2d(torch.tensor(X), t["W1"], t["b1"], padding=pad))
    pooled = F.max_pool2d(a, 2, stride=2)  # floors odd sizes
    h = torch.relu(pooled.reshape(5, -1) @ t["W2"] + t["b2"])
    tscores = h @ t["W3"] + t["b3"]
    tloss = F.cross_entropy(tscores, torch.tensor(y))
    tloss = tloss + 0.5 * 0.3 * sum((t[k] ** 2).sum() for k in ("W1", "W2", "W3"))
    tloss.backward()
    assert rel_error(scores, tscores.detach().numpy()) < 1e-10
    assert abs(loss - tloss.item()) < 1e-10
    for k in grads:
        assert rel_error(grads[k], t[k].grad.numpy()) < 1e-9, k


def test_initial_loss_is_log_num_classes(rng):
    model = ThreeLayerConvNet(input_dim=(3, 16, 16), num_filters=8, hidden_dim=20, seed=1)
    X = rng.standard_normal((20, 3, 16, 16)).astype(np.float32)
    loss, _ = model.loss(X, rng.integers(10, size=20))
    assert abs(loss - np.log(10)) < 1e-2
    model.reg = 1e3  # read at each call
    assert model.loss(X, rng.integers(10, size=20))[0] > loss + 1e-3


def test_overfits_small_data(rng):
    X = rng.standard_normal((50, 3, 16, 16)).astype(np.float32)
    y = rng.integers(10, size=50)
    model = ThreeLayerConvNet(input_dim=(3, 16, 16), num_filters=8, filter_size=3, hidden_dim=64,
                              weight_scale=1e-2, seed=0)
    configs = {k: {"learning_rate": 1e-2} for k in model.params}
    losses = []
    for _ in range(30):
        loss, grads = model.loss(X, y)
        losses.append(loss)
        for k in model.params:
            model.params[k], configs[k] = adam(model.params[k], grads[k], configs[k])
    accuracy = np.mean(model.loss(X).argmax(axis=1) == y)
    assert losses[-1] < 0.1 * losses[0]
    assert accuracy == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype(rng, dtype):
    model = tiny_model(dtype=dtype)
    X = rng.standard_normal((3, 3, 6, 6))  # float64 data is cast to the model's dtype
    assert model.loss(X).dtype == dtype
    loss, grads = model.loss(X, np.array([0, 1, 3]))
    assert np.asarray(loss).dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())
    assert all(p.dtype == dtype for p in model.params.values())


def test_param_shapes_default():
    model = ThreeLayerConvNet(seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert ThreeLayerConvNet(input_dim=(1, 28, 28), seed=0).params["W2"].shape == (32 * 14 * 14, 100)
    assert ThreeLayerConvNet(input_dim=(3, 31, 31), seed=0).params["W2"].shape == (32 * 15 * 15, 100)


def test_seed_reproducible_and_global_rng_default():
    a, b = ThreeLayerConvNet(seed=3), ThreeLayerConvNet(seed=3)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    np.random.seed(5)
    c = ThreeLayerConvNet()
    np.random.seed(5)
    d = ThreeLayerConvNet()
    assert all(np.array_equal(c.params[k], d.params[k]) for k in c.params)


def test_rejects_bad_shapes(rng):
    model = tiny_model()
    with pytest.raises(ValueError, match=r"\(N, 3, 6, 6\).*\(2, 6, 6, 3\)"):
        model.loss(rng.standard_normal((2, 6, 6, 3)))
    with pytest.raises(ValueError, match="input_dim"):
        ThreeLayerConvNet(input_dim=(3, 32))
    with pytest.raises(ValueError, match="too small"):
        ThreeLayerConvNet(input_dim=(3, 1, 1), filter_size=1)
    with pytest.raises(ValueError, match="num_filters"):
        ThreeLayerConvNet(num_filters=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [0.25, np.float64(0.25), np.float32(0.25), 1, np.int64(0)])
def test_loss_is_a_scalar_of_the_model_dtype_whatever_the_reg_type(rng, dtype, reg):
    # A NumPy float64 reg used to make a float32 model's loss float64 (NumPy 2's promotion).
    model = tiny_model(reg=reg, dtype=dtype)
    X = rng.standard_normal((3, 3, 6, 6))
    y = np.array([0, 1, 3])
    loss, grads = model.loss(X, y)
    assert isinstance(loss, dtype)
    assert all(g.dtype == dtype for g in grads.values())
    model.reg = float(reg)
    ref, _ = model.loss(X, y)
    assert loss == ref


@pytest.mark.parametrize("reg", [float("nan"), -0.1, "0.1", None, True])
def test_rejects_bad_reg(rng, reg):
    model = tiny_model(reg=reg)
    with pytest.raises(ValueError, match="reg must be a finite number >= 0"):
        model.loss(rng.standard_normal((2, 3, 6, 6)), np.array([0, 1]))


@pytest.mark.parametrize("weight_scale", ["1e-3", None, float("nan"), -1e-3])
def test_rejects_a_weight_scale_that_is_not_a_non_negative_number(weight_scale):
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: weight_scale must be a finite number >= 0"):
        ThreeLayerConvNet(input_dim=(3, 6, 6), num_filters=2, filter_size=3, hidden_dim=4,
                          weight_scale=weight_scale)


def test_constructor_defaults_are_the_courses():
    # API.md: weight_scale 1e-3, float32, zero biases, 32 filters of 7 x 7, 100 hidden, 10 classes.
    np.random.seed(0)
    model = ThreeLayerConvNet()
    assert model.params["W1"].dtype == np.float32
    assert model.params["W1"].shape == (32, 3, 7, 7) and model.params["W3"].shape == (100, 10)
    for k in ("b1", "b2", "b3"):
        assert not model.params[k].any()
    assert np.std(model.params["W2"]) == pytest.approx(1e-3, rel=0.05)
