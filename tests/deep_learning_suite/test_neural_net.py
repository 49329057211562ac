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
