import warnings

import numpy as np
import pytest

from deep_learning_suite import optim
from deep_learning_suite.data import load_sample
from linear_classifiers.__main__ import add_bias_column, preprocess
from linear_classifiers.k_nearest_neighbor import KNearestNeighbor
from linear_classifiers.linear_classifier import (LinearClassifier, LinearSVM, Softmax,
                                                  TrainingDivergedWarning)
from linear_classifiers.linear_svm import svm_loss_vectorized
from linear_classifiers.softmax import softmax_loss_vectorized


@pytest.fixture(scope="module")
def sample():
    """The shipped Fashion-MNIST sample, flattened, scaled, mean-subtracted."""
    d = load_sample()
    X_train, X_test = preprocess(d["X_train"], d["X_test"], dtype=np.float32)
    return X_train, d["y_train"], X_test, d["y_test"]


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_learns_the_fashion_mnist_sample(sample, cls):
    X_train, y_train, X_test, y_test = sample
    X_train, X_test = add_bias_column(X_train), add_bias_column(X_test)
    model = cls()
    history = model.train(X_train, y_train, learning_rate=0.05, reg=1e-3, num_iters=150, seed=0)
    assert len(history) == 150
    assert np.mean(history[-20:]) < 0.5 * history[0]
    accuracy = np.mean(model.predict(X_test) == y_test)
    assert accuracy > 0.7, f"{cls.__name__} reached only {accuracy:.3f} on 10 classes"


def test_knn_learns_the_fashion_mnist_sample(sample):
    X_train, y_train, X_test, y_test = sample
    knn = KNearestNeighbor().train(X_train[:5000], y_train[:5000])
    accuracy = np.mean(knn.predict(X_test[:500], k=5) == y_test[:500])
    assert accuracy > 0.7, f"kNN reached only {accuracy:.3f} on 10 classes"


class ConstantGradient(LinearClassifier):
    """Records each minibatch and returns a gradient of ones, to test the SGD loop itself."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def loss(self, X_batch, y_batch, reg):
        self.batches.append((X_batch.copy(), y_batch.copy(), reg))
        return float(len(self.batches)), np.ones_like(self.W)


def test_sgd_loop_steps_against_the_gradient_on_rows_of_the_data(rng):
    X = rng.standard_normal((30, 4))
    y = rng.integers(3, size=30)
    model = ConstantGradient()
    history = model.train(X, y, learning_rate=0.1, reg=0.25, num_iters=5, batch_size=7, seed=1)
    assert history == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(model.batches) == 5
    rows = {tuple(r): label for r, label in zip(X, y)}
    for X_batch, y_batch, reg in model.batches:
        assert X_batch.shape == (7, 4) and reg == 0.25
        assert all(rows[tuple(r)] == label for r, label in zip(X_batch, y_batch))
    W0 = model.W + 5 * 0.1
    # The lazy initialisation: 0.001 * randn(D, C), C = y.max() + 1.
    assert W0.shape == (4, 3)
    assert 0 < np.abs(W0).max() < 0.01


@pytest.mark.parametrize("kwargs, rows", [({}, 200), ({"batch_size": 13}, 13), ({"batch_size": 1}, 1)])
def test_each_step_sees_batch_size_rows_200_by_default(rng, kwargs, rows):
    # The course's default minibatch is 200 rows; drawn with replacement, so N = 50 is enough.
    X, y = rng.standard_normal((50, 3)), np.arange(50) % 2
    model = ConstantGradient()
    model.train(X, y, num_iters=3, seed=0, **kwargs)
    assert [(len(X_batch), len(y_batch)) for X_batch, y_batch, _ in model.batches] == [(rows, rows)] * 3


@pytest.mark.parametrize("seed", [0, 1])
def test_minibatches_draw_every_row_including_the_first_and_the_last(rng, seed):
    # Column 0 holds the row's index, so each recorded batch says which rows it drew.
    N = 10
    X = np.column_stack([np.arange(N, dtype=np.float64), rng.standard_normal(N)])
    y = np.arange(N) % 3
    model = ConstantGradient()
    model.train(X, y, num_iters=100, batch_size=5, seed=seed)
    drawn = np.concatenate([X_batch[:, 0] for X_batch, _, _ in model.batches]).astype(np.int64)
    counts = np.bincount(drawn, minlength=N)
    assert counts.shape == (N,), f"rows outside 0..{N - 1} drawn: {np.unique(drawn)}"
    # 500 uniform draws give each row about 50 (standard deviation 6.7); a row never drawn
    # means the sampling range is off by one.
    assert counts.min() >= 20 and counts.max() <= 80, counts.tolist()


def test_lazy_init_uses_max_label_and_input_dtype(rng):
    X = rng.standard_normal((40, 6)).astype(np.float32)
    y = np.array([0, 4] * 20)  # classes 1..3 absent: C is still y.max() + 1 = 5
    model = Softmax()
    model.train(X, y, num_iters=0, seed=0)
    assert model.W.shape == (6, 5) and model.W.dtype == np.float32
    assert 5e-4 < model.W.std() < 2e-3
    model.train(X, y, num_iters=3, seed=0)
    assert model.W.dtype == np.float32 and model.predict(X).dtype == np.int64


def test_seed_makes_training_reproducible(rng):
    X = rng.standard_normal((50, 5))
    y = rng.integers(4, size=50)
    runs = []
    for seed in (3, 3, 4):
        model = LinearSVM()
        history = model.train(X, y, learning_rate=1e-2, num_iters=20, batch_size=10, seed=seed)
        runs.append((history, model.W))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


@pytest.mark.parametrize("cls, loss_fn", [(LinearSVM, svm_loss_vectorized), (Softmax, softmax_loss_vectorized)])
def test_subclass_losses_are_the_vectorized_functions(rng, cls, loss_fn):
    model = cls()
    model.W = rng.standard_normal((5, 3))
    X, y = rng.standard_normal((8, 5)), rng.integers(3, size=8)
    loss, dW = model.loss(X, y, 0.2)
    ref_loss, ref_dW = loss_fn(model.W, X, y, 0.2)
    assert loss == ref_loss and np.array_equal(dW, ref_dW)


def test_training_continues_from_existing_weights(rng):
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    model = Softmax()
    first = model.train(X, y, learning_rate=0.5, num_iters=50, seed=0)
    W = model.W.copy()
    second = model.train(X, y, learning_rate=0.5, num_iters=50, seed=1)
    assert model.W.shape == W.shape
    assert np.mean(second) < np.mean(first)


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_divergence_warns_stops_and_keeps_the_last_finite_weights(rng, cls):
    X = rng.standard_normal((50, 4)) * 1e3
    y = rng.integers(3, size=50)
    model = cls()
    with np.errstate(all="ignore"), pytest.warns(TrainingDivergedWarning,
                                                 match="Lower the learning rate"):
        history = model.train(X, y, learning_rate=1e150, num_iters=100, seed=0)
    assert 0 < len(history) < 100 and np.all(np.isfinite(history))
    assert np.all(np.isfinite(model.W))
    # the weights kept are the ones whose loss is the last one recorded
    replay = np.random.default_rng(0)  # train's draws: the init, then one batch per step
    replay.standard_normal((4, 3))
    batch = [replay.integers(50, size=200) for _ in history][-1]
    with np.errstate(all="ignore"):
        assert model.loss(X[batch], y[batch], 1e-5)[0] == history[-1]
    assert model.predict(X).shape == (50,)


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_in_the_data_is_blamed_on_the_data_not_the_learning_rate(rng, cls, bad):
    X = rng.standard_normal((100, 5))
    y = rng.integers(3, size=100)
    X[7, 2] = X[42, 0] = bad                      # e.g. features divided by a zero std
    model = cls()
    with np.errstate(all="ignore"), pytest.warns(TrainingDivergedWarning,
                                                 match=r"X holds NaN/inf in rows \[7, 42\]") as caught:
        history = model.train(X, y, learning_rate=1e-3, num_iters=100, batch_size=500, seed=0)
    message = str(caught[0].message)
    assert "learning rate" not in message and "np.isfinite" in message
    assert history == [] and np.all(np.isfinite(model.W))


def test_a_sweep_with_a_diverging_corner_runs_to_the_end(sample):
    # The course's SVM grid: lr 5e-5 with reg 5e4 multiplies W by -4 per step and overflows.
    X_train, y_train, X_val, y_val = sample
    # the course's scale: mean-subtracted pixels in 0..255, a bias column
    X_train, X_val = add_bias_column(X_train * 255), add_bias_column(X_val * 255)
    results = {}
    for lr in (1e-7, 5e-5):
        with np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = LinearSVM()
            model.train(X_train, y_train, learning_rate=lr, reg=5e4, num_iters=1500, seed=0)
        diverged = any(issubclass(w.category, TrainingDivergedWarning) for w in caught)
        results[lr] = (diverged, np.mean(model.predict(X_val) == y_val))
    assert results[1e-7][0] is False and results[5e-5][0] is True
    assert results[1e-7][1] > 0.7


def test_base_class_has_no_loss(rng):
    with pytest.raises(NotImplementedError):
        LinearClassifier().train(rng.standard_normal((4, 2)), np.array([0, 1, 0, 1]), num_iters=1)


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_predict_before_train_is_a_clear_error(rng, cls):
    with pytest.raises(RuntimeError, match=r"train\(X, y\)"):
        cls().predict(rng.standard_normal((2, 3)))


@pytest.mark.parametrize(
    "X_shape, y, msg",
    [
        ((10,), np.zeros(10, dtype=int), r"X must be 2-D"),
        ((10, 3), np.zeros(9, dtype=int), "10 labels"),
        ((10, 3), np.linspace(0, 2, 10), "integer"),
        ((10, 3), np.array([0, 1] * 4 + [-1, 0]), "negative"),
    ],
)
def test_train_rejects_bad_shapes_and_labels(rng, X_shape, y, msg):
    with pytest.raises(ValueError, match=msg):
        Softmax().train(rng.standard_normal(X_shape), y)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(reg=-1e-3), "reg"),
        (dict(num_iters=-1), "num_iters"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_train_rejects_bad_hyperparameters(rng, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        LinearSVM().train(rng.standard_normal((10, 3)), np.arange(10) % 2, **kwargs)


def test_trained_model_rejects_mismatched_data(rng):
    model = LinearSVM()
    model.train(rng.standard_normal((10, 3)), np.arange(10) % 3, num_iters=2)
    with pytest.raises(ValueError, match=r"\(4, 5\).*D = 3"):
        model.predict(rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match=r"\(10, 4\).*\(3, 3\)"):
        model.train(rng.standard_normal((10, 4)), np.arange(10) % 3)
    with pytest.raises(ValueError, match="out of range"):
        model.train(rng.standard_normal((10, 3)), np.arange(10) % 5)
    with pytest.raises(ValueError, match="astype"):
        model.predict(np.ones((2, 3), dtype=np.uint8))


def test_verbose_prints_the_loss_every_100_iterations(rng, capsys):
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 2
    history = Softmax().train(X, y, num_iters=201, batch_size=5, verbose=True, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["iteration 0 / 201", "iteration 100 / 201",
                                                      "iteration 200 / 201"]
    assert float(lines[1].split()[-1]) == pytest.approx(history[100], rel=1e-5)


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_without_a_seed_training_follows_np_random_seed(rng, cls):
    X = rng.standard_normal((60, 5))
    y = rng.integers(3, size=60)
    state = np.random.get_state()
    try:
        runs = []
        for global_seed in (2, 2, 3):
            np.random.seed(global_seed)
            model = cls()
            runs.append((model.train(X, y, num_iters=20, batch_size=10), model.W.copy()))
    finally:
        np.random.set_state(state)
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


@pytest.mark.parametrize("cls, loss_fn", [(LinearSVM, svm_loss_vectorized), (Softmax, softmax_loss_vectorized)])
@pytest.mark.parametrize("first, then", [(np.float32, np.float64), (np.float64, np.float32),
                                         (np.float32, np.float32), (np.float64, np.float64)])
def test_training_keeps_ws_dtype_whatever_the_dtype_of_later_data(rng, cls, loss_fn, first, then):
    X = rng.standard_normal((40, 5))
    y = rng.integers(3, size=40)
    model = cls()
    model.train(X.astype(first), y, learning_rate=1e-2, num_iters=5, seed=0)
    history = model.train(X.astype(then), y, learning_rate=1e-2, num_iters=5, seed=1)
    assert model.W.dtype == first and len(history) == 5 and np.all(np.isfinite(history))
    # The loss's gradient matches W, so the package's own optimisers take it as it is.
    _, dW = loss_fn(model.W, X.astype(then), y, 1e-3)
    new_W, _ = optim.sgd(model.W, dW, {"learning_rate": 1e-2})
    assert new_W.dtype == first


# ----------------------------------------------------------------- save / load (2024+ notebooks)

@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """save/load tests run in tmp_path, so a bare name's ./saved/ is inside it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("cls", [LinearClassifier, LinearSVM, Softmax])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_then_load_into_a_fresh_model_predicts_the_same(rng, in_tmp, capsys, cls, dtype):
    X = rng.standard_normal((20, 5)).astype(dtype)
    model = cls()
    model.W = rng.standard_normal((5, 4)).astype(dtype)
    model.save("best_softmax.npy")
    assert capsys.readouterr().out == "best_softmax.npy saved.\n"
    assert sorted(p.name for p in in_tmp.rglob("*")) == ["best_softmax.npy", "saved"]
    fresh = cls()
    assert fresh.load("best_softmax.npy") is True
    assert capsys.readouterr().out == "best_softmax.npy loaded.\n"
    assert fresh.W.dtype == dtype and np.array_equal(fresh.W, model.W)
    assert np.array_equal(fresh.predict(X), model.predict(X))


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_save_before_training_is_a_clear_error(in_tmp, cls):
    with pytest.raises(RuntimeError, match=r"not trained.*train\(X, y\) before save"):
        cls().save("w.npy")
    assert not (in_tmp / "saved").exists()


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_load_of_a_missing_file_returns_false_and_keeps_w(rng, in_tmp, capsys, cls):
    model = cls()
    model.W = W = rng.standard_normal((3, 2))
    assert model.load("nothing_here.npy") is False
    assert capsys.readouterr().out == "nothing_here.npy not available.\n"
    assert model.W is W


def test_load_reads_the_courses_pickled_file_and_training_continues(rng, in_tmp):
    (in_tmp / "saved").mkdir()
    W = rng.standard_normal((4, 3))
    np.save(in_tmp / "saved" / "course.npy", {"W": W}, allow_pickle=True)  # the course's save()
    model = Softmax()
    assert model.load("course.npy")
    assert np.array_equal(model.W, W)
    model.train(rng.standard_normal((10, 4)), rng.integers(3, size=10), num_iters=2, seed=0)
    assert model.W.shape == (4, 3)


@pytest.mark.parametrize("params, msg", [
    ({"W1": np.ones((3, 2))}, r"exactly one parameter 'W', this one has \['W1'\]"),
    ({"W": np.ones((3, 2)), "b": np.ones(2)}, r"exactly one parameter 'W'"),
    ({"W": np.ones(3)}, r"2-D floating-point \(D, C\) array, got shape \(3,\)"),
    ({"W": np.ones((3, 2), dtype=np.int64)}, "got shape \\(3, 2\\) dtype int64"),
], ids=["other-name", "extra-name", "1-D", "integer"])
def test_load_refuses_a_file_that_is_not_a_linear_classifiers(in_tmp, params, msg):
    from deep_learning_suite.saved_params import save_params

    save_params("other.npy", params)
    model = Softmax()
    with pytest.raises(ValueError, match=rf"Softmax.load\('other.npy'\): .*{msg}"):
        model.load("other.npy")
    assert model.W is None


def test_load_of_a_hostile_file_runs_nothing(in_tmp):
    import os
    import pickle

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {in_tmp / 'pwned'}",)

    (in_tmp / "saved").mkdir()
    with open(in_tmp / "saved" / "evil.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(RunsCode(), f, protocol=3)
    with pytest.raises(ValueError, match=r"evil\.npy.*refusing to load posix\.system"):
        LinearSVM().load("evil.npy")
    assert not (in_tmp / "pwned").exists()
