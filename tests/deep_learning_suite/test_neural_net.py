"""Assignment 1's self-training two-layer net, checked with its notebook's toy problem."""

import numpy as np
import pytest
import torch

from deep_learning_suite.data import load_sample
from deep_learning_suite.neural_net import TwoLayerNet
from deep_learning_suite.trainer import TrainingDivergedError
from deep_learning_suite.utils import eval_numerical_gradient, rel_error


@pytest.fixture
def toy():
    """The notebook's init_toy_model and init_toy_data, the global stream restored after."""
    state = np.random.get_state()
    try:
        np.random.seed(0)
        net = TwoLayerNet(4, 10, 3, std=1e-1)
        np.random.seed(1)
        X = 10 * np.random.randn(5, 4)
    finally:
        np.random.set_state(state)
    return net, X, np.array([0, 1, 2, 2, 1])


def test_toy_scores_and_loss_match_the_notebook(toy):
    net, X, y = toy
    correct_scores = np.array([
        [-0.81233741, -1.27654624, -0.70335995],
        [-0.17129677, -1.18803311, -0.47310444],
        [-0.51590475, -1.01354314, -0.8504215],
        [-0.15419291, -0.48629638, -0.52901952],
        [-0.00618733, -0.12435261, -0.15226949]])
    assert np.sum(np.abs(net.loss(X) - correct_scores)) < 1e-7   # "should be very small, < 1e-7"
    loss, _ = net.loss(X, y, reg=0.05)
    assert abs(loss - 1.30378789133) < 1e-12                       # "should be very small, < 1e-12"


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_gradients_match_numerical_and_torch(toy, reg):
    net, X, y = toy
    loss, grads = net.loss(X, y, reg=reg)
    for name in net.params:
        num = eval_numerical_gradient(lambda _: net.loss(X, y, reg=reg)[0], net.params[name], verbose=False)
        assert rel_error(num, grads[name]) < 1e-7, name
    t = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    scores = torch.relu(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    tloss = torch.nn.functional.cross_entropy(scores, torch.tensor(y)) + reg * (
        (t["W1"] ** 2).sum() + (t["W2"] ** 2).sum())
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-12
    for name in net.params:
        assert rel_error(grads[name], t[name].grad.numpy()) < 1e-10, name


def test_toy_training_reaches_the_notebooks_loss(toy):
    net, X, y = toy
    state = np.random.get_state()
    try:
        np.random.seed(0)
        stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    finally:
        np.random.set_state(state)
    assert len(stats["loss_history"]) == 100
    assert stats["loss_history"][-1] < 0.02                        # "less than 0.02"
    assert stats["val_acc_history"][-1] == 1.0


def test_trains_on_real_images_with_decay_once_per_epoch(capsys):
    s = load_sample()
    X = s["X_train"].reshape(len(s["X_train"]), -1) / 255.0
    mean = X[:8000].mean(axis=0)
    X_train, y_train, X_val, y_val = X[:8000] - mean, s["y_train"][:8000], X[8000:] - mean, s["y_train"][8000:]
    state = np.random.get_state()
    try:
        np.random.seed(0)
        net = TwoLayerNet(784, 100, 10, std=1e-2)
        stats = net.train(X_train, y_train, X_val, y_val, learning_rate=0.1, learning_rate_decay=0.95,
                          reg=1e-4, num_iters=400, batch_size=200, verbose=True, seed=0)
    finally:
        np.random.set_state(state)
    assert len(stats["val_acc_history"]) == len(stats["train_acc_history"]) == 10   # 40 steps per epoch
    assert stats["val_acc_history"][-1] > 0.75
    assert np.mean(net.predict(X_val) == y_val) == pytest.approx(stats["val_acc_history"][-1], abs=0.02)
    out = capsys.readouterr().out
    assert "iteration 0 / 400: loss" in out and "iteration 300 / 400: loss" in out


def test_seed_and_np_random_seed_make_training_repeatable(toy):
    net, X, y = toy
    W = {k: v.copy() for k, v in net.params.items()}

    def run(**kw):
        net.params = {k: v.copy() for k, v in W.items()}
        return net.train(X, y, X, y, num_iters=10, batch_size=3, **kw)["loss_history"]

    assert run(seed=1) == run(seed=1) != run(seed=2)
    state = np.random.get_state()
    try:
        np.random.seed(4)
        a = run()
        np.random.seed(4)
        b = run()
    finally:
        np.random.set_state(state)
    assert a == b


def test_bad_input_and_divergence_are_reported(toy):
    net, X, y = toy
    with pytest.raises(ValueError, match=r"X must be \(N, 4\), got shape \(5, 3\)"):
        net.loss(X[:, :3])
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        TwoLayerNet(4, 0, 3)
    with pytest.raises(ValueError, match="labels"):
        net.loss(X, np.array([0, 1, 2, 3, 1]))
    with pytest.raises(ValueError, match="num_iters must be an integer >= 0"):
        net.train(X, y, X, y, num_iters=-1)
    with pytest.raises(TrainingDivergedError, match="lower learning_rate"), np.errstate(all="ignore"):
        net.train(X, y, X, y, learning_rate=1e300, num_iters=5)


@pytest.mark.parametrize("how", ["dtype", "astype"])
def test_float32_net_computes_in_float32(toy, how):
    net64, X, y = toy
    if how == "dtype":
        state = np.random.get_state()
        try:
            np.random.seed(0)
            net = TwoLayerNet(4, 10, 3, std=1e-1, dtype=np.float32)
        finally:
            np.random.set_state(state)
    else:
        net = TwoLayerNet(4, 10, 3)
        net.params = {k: v.astype(np.float32) for k, v in net64.params.items()}
    for k in net.params:                                   # the float64 weights, rounded
        assert net.params[k].dtype == np.float32
        assert np.array_equal(net.params[k], net64.params[k].astype(np.float32))
    scores = net.loss(X)                                   # float64 X is cast to the params'
    assert scores.dtype == np.float32
    assert np.allclose(scores, net64.loss(X), atol=1e-5)
    loss, grads = net.loss(X, y, reg=np.float64(0.05))     # a NumPy float64 reg must not promote
    assert isinstance(loss, np.float32) and abs(loss - 1.30378789133) < 1e-5
    assert all(g.dtype == np.float32 for g in grads.values())
    stats = net.train(X, y, X, y, learning_rate=np.float64(1e-1), reg=np.float64(5e-6), num_iters=20,
                      seed=0)
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert stats["loss_history"][-1] < stats["loss_history"][0]
    assert net.predict(X.astype(np.float32)).shape == (5,)


def test_float64_default_is_unchanged(toy):
    net, X, y = toy
    assert all(v.dtype == np.float64 for v in net.params.values())
    loss, _ = net.loss(X.astype(np.float32), y, reg=0.05)  # float32 X is cast up, as before
    assert isinstance(loss, np.float64)
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        TwoLayerNet(4, 10, 3, dtype=np.int64)


@pytest.mark.parametrize("name", ["learning_rate", "learning_rate_decay", "reg"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e-3, np.float32("nan"), "1e-3", True, None])
def test_train_rejects_bad_rates_before_any_step(toy, name, value):
    net, X, y = toy
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=rf"train: {name} must be a finite number >= 0"):
        net.train(X, y, X, y, num_iters=3, batch_size=2, **{name: value})
    assert all(np.array_equal(net.params[k], before[k]) for k in before)


@pytest.mark.parametrize("value", [np.float64(1e-1), np.float32(1e-1), 1, np.int64(0)])
def test_train_accepts_numpy_and_integer_rates(toy, value):
    net, X, y = toy
    stats = net.train(X, y, X, y, learning_rate=value, learning_rate_decay=value, num_iters=3, seed=0)
    assert len(stats["loss_history"]) == 3
    assert all(isinstance(v, float) for v in stats["loss_history"])


@pytest.mark.parametrize("reg", [float("nan"), -0.1, "0.05"])
def test_loss_rejects_bad_reg(toy, reg):
    net, X, y = toy
    with pytest.raises(ValueError, match="loss: reg must be a finite number >= 0"):
        net.loss(X, y, reg=reg)


@pytest.mark.parametrize("which, n, match", [
    ("y", 3, r"y must be a 1-D array of 5 labels"),            # was an IndexError mid-run
    ("y", 8, r"y must be a 1-D array of 5 labels"),            # was silently accepted
    ("y_val", 2, r"y_val must be a 1-D array of 5 labels"),    # was a broadcasting error
    ("y_val", 7, r"y_val must be a 1-D array of 5 labels"),
])
def test_train_rejects_labels_of_the_wrong_length(toy, which, n, match):
    net, X, y = toy
    labels = {"y": y, "y_val": y}
    labels[which] = np.resize(y, n)
    with pytest.raises(ValueError, match=match):
        net.train(X, labels["y"], X, labels["y_val"], num_iters=3, batch_size=10, seed=0)


def test_train_rejects_bad_data_shapes(toy):
    net, X, y = toy
    with pytest.raises(ValueError, match=r"train: X_val must be \(N, 4\), got shape \(5, 3\)"):
        net.train(X, y, X[:, :3], y, num_iters=1)
    with pytest.raises(ValueError, match="X holds no samples"):
        net.train(X[:0], y[:0], X, y, num_iters=1)
    assert net.train(X[:0], y[:0], X, y, num_iters=0)["loss_history"] == []


@pytest.mark.parametrize("learning_rate", [1e300, 1e150])
def test_divergence_restores_the_last_parameters_with_a_finite_loss(toy, learning_rate):
    net, X, y = toy
    start = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(TrainingDivergedError, match="lower learning_rate") as caught, np.errstate(all="ignore"):
        net.train(X, y, X, y, learning_rate=learning_rate, num_iters=50, batch_size=3, seed=0)
    stats = caught.value.stats                                # what train would have returned so far
    finite = stats["loss_history"]
    assert 1 <= len(finite) < 50 and np.all(np.isfinite(finite))
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
    # The parameters kept are those after len(finite) - 1 steps: the last whose loss was finite.
    replay = TwoLayerNet(4, 10, 3)
    replay.params = start
    with np.errstate(all="ignore"):
        replay.train(X, y, X, y, learning_rate=learning_rate, num_iters=len(finite) - 1, batch_size=3, seed=0)
    assert all(np.array_equal(net.params[k], replay.params[k]) for k in start)
    assert net.predict(X).shape == (5,)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_the_data_is_blamed_on_the_data_not_the_learning_rate(toy, bad):
    net, X, y = toy
    X = X.copy()
    X[2, 1] = bad                                            # e.g. a feature divided by a zero std
    with pytest.raises(TrainingDivergedError, match=r"X holds NaN/inf in rows \[2\]") as caught, \
            np.errstate(all="ignore"):
        net.train(X, y, X, y, num_iters=10, batch_size=20, seed=0)
    assert "learning_rate" not in str(caught.value)
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
