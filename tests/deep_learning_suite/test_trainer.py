import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from deep_learning_suite import optim
from deep_learning_suite.checkpoint import CheckpointError, save_checkpoint
from deep_learning_suite.data import load_sample
from deep_learning_suite.fully_connected_net import TwoLayerNet
from deep_learning_suite.trainer import Solver, TrainingDivergedError, check_finite_loss, latest_checkpoint

from ._tiny_model import TinyNet, blobs, run

ROOT = Path(__file__).resolve().parents[2]


def quiet(model, data, **kw):
    kw.setdefault("verbose", False)
    return Solver(model, data, **kw)


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="unrecognized option.*learning_rat"):
        Solver(TinyNet(), blobs(), learning_rat=1e-3)


@pytest.mark.parametrize("kw, match", [
    ({"update_rule": "adamw_typo"}, "invalid update_rule"),
    ({"update_rule": "np"}, "invalid update_rule"),
    ({"update_rule": "check_float"}, "invalid update_rule"),
    ({"update_rule": 3}, "update_rule must be"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    # the value given is named, not what int() made of it
    ({"batch_size": 0.5}, r"batch_size must be a positive integer, got 0\.5"),
    ({"batch_size": "10"}, "batch_size must be a positive integer, got '10'"),
    # int(0.5) would be 0 epochs: a run that trains nothing without a word
    ({"num_epochs": 0.5}, r"num_epochs must be a non-negative integer, got 0\.5"),
    ({"num_epochs": -1}, "num_epochs must be a non-negative integer, got -1"),
    ({"num_epochs": float("nan")}, "num_epochs must be a non-negative integer, got nan"),
    # t % print_every would divide by zero at the first iteration
    ({"print_every": 0}, "print_every must be a positive integer, got 0"),
    ({"print_every": 2.5}, r"print_every must be a positive integer, got 2\.5"),
    ({"lr_decay": None}, "lr_decay must be a number.*got None"),
    ({"lr_decay": "0.9"}, "lr_decay must be a number.*got '0.9'"),
    # a negative sample count used to reach NumPy as "negative dimensions are not allowed"
    ({"num_val_samples": -1}, "num_val_samples must be a positive integer, got -1"),
    ({"num_train_samples": 0}, "num_train_samples must be a positive integer, got 0"),
    ({"num_train_samples": 10.5}, r"num_train_samples must be a positive integer, got 10\.5"),
    # "2" used to be a TypeError deep in a comparison, while 1.5 and True were taken
    ({"keep_checkpoints": "2"}, "keep_checkpoints must be a positive integer, got '2'"),
    ({"keep_checkpoints": 1.5}, r"keep_checkpoints must be a positive integer, got 1\.5"),
    ({"keep_checkpoints": True}, "keep_checkpoints must be a positive integer, got True"),
    # checkpoint_meta that no checkpoint can hold used to fail at the end of the first epoch
    ({"checkpoint_meta": {"f": np.float32}}, "checkpoint_meta.*cannot checkpoint a type"),
    ({"checkpoint_meta": {1: "one"}}, "checkpoint_meta.*dict keys must be strings"),
    ({"checkpoint_meta": {"a": np.array([object()])}}, "checkpoint_meta.*only numeric arrays"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        Solver(TinyNet(), blobs(), **kw)


@pytest.mark.parametrize("kw, attr, want", [
    ({"batch_size": 50.0}, "batch_size", 50),
    ({"batch_size": np.int64(50)}, "batch_size", 50),
    ({"num_epochs": 2.0}, "num_epochs", 2),
    ({"num_epochs": 0}, "num_epochs", 0),
    ({"print_every": np.int32(3)}, "print_every", 3),
    ({"lr_decay": np.float64(0.5)}, "lr_decay", 0.5),
])
def test_whole_number_options_become_python_ints(kw, attr, want):
    value = getattr(quiet(TinyNet(), blobs(), **kw), attr)
    assert value == want and type(value) is type(want)


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam",
                                  "adamw"])
def test_numpy_scalar_hyperparameters_leave_a_float32_model_float32(rule):
    # A random search's learning rate is an np.float64 (np.logspace, 10 ** np.random.uniform);
    # under NumPy 2 an np.float64 times a float32 array is float64, so a float32 model trained
    # with one, or with an np.float64 lr_decay, used to turn float64 after the first epoch and
    # then fail in a layer with a dtype mismatch.
    lr = np.logspace(-4, -2, 5)[0]
    assert isinstance(lr, np.float64)
    updates = []

    def recording(w, dw, config=None):     # the named rule, noting what each update gives
        next_w, config = getattr(optim, rule)(w, dw, config)
        updates.append((next_w.dtype, not np.array_equal(next_w, w)))
        return next_w, config

    model = TinyNet(dtype=np.float32)
    s = quiet(model, blobs(dtype=np.float32), update_rule=recording,
              optim_config={"learning_rate": lr}, lr_decay=np.float64(0.9), num_epochs=2,
              batch_size=50, seed=0)
    s.train()
    assert len(s.loss_history) == 2 * 4 and all(np.isfinite(s.loss_history))
    assert len(updates) == 2 * 4 * len(model.params)
    assert all(dtype == np.float32 for dtype, _ in updates)   # in both epochs
    assert sum(moved for _, moved in updates) > len(updates) // 2
    assert all(model.params[k].dtype == np.float32 for k in model.params)
    assert all(s.best_params[k].dtype == np.float32 for k in s.best_params)
    for p, c in s.optim_configs.items():
        # plain Python floats, decayed twice ...
        assert type(c["learning_rate"]) is float
        assert c["learning_rate"] == pytest.approx(float(lr) * 0.81, rel=1e-12)
        # ... while the rule's state stays arrays of the parameter's dtype
        for key in ("velocity", "cache", "m", "v"):
            if key in c:
                assert isinstance(c[key], np.ndarray) and c[key].dtype == np.float32
                assert c[key].shape == model.params[p].shape


def test_only_numpy_scalars_in_optim_config_become_python_numbers():
    velocity = np.zeros((6, 16))
    s = quiet(TinyNet(), blobs(), update_rule="sgd_momentum",
              optim_config={"learning_rate": np.float32(1e-2), "momentum": np.float64(0.9),
                            "velocity": velocity, "note": "kept"})
    c = s.optim_configs["W1"]
    assert type(c["learning_rate"]) is float and type(c["momentum"]) is float
    assert isinstance(c["velocity"], np.ndarray) and c["velocity"] is not velocity
    assert c["note"] == "kept"


@pytest.mark.parametrize("change, match", [
    (lambda y: y + 7, r"y_val holds labels out of range: \[\d+"),
    (lambda y: y - 3, r"y_val holds labels out of range: \[-"),
    (lambda y: y.astype(np.float64), "y_val must hold integer class labels"),
    (lambda y: y[:, None], "y_val must be a 1-D array"),
])
def test_bad_validation_labels_are_an_error_not_an_accuracy_of_zero(change, match):
    # Training labels are checked by the model's loss; validation labels only ever meet
    # argmax(scores) == y, where wrong ones used to give best_val_acc == 0 without a word.
    data = blobs()
    data["y_val"] = change(data["y_val"])
    s = quiet(TinyNet(), data, num_epochs=1, batch_size=50, seed=0)
    with pytest.raises(ValueError, match=match):
        s.train()


@pytest.mark.parametrize("n_x, n_y", [(10, 9), (10, 11), (0, 3)])
def test_check_accuracy_needs_one_label_per_row(n_x, n_y):
    data = blobs()
    s = quiet(TinyNet(), data)
    with pytest.raises(ValueError, match=f"X has {n_x} rows but y has {n_y} labels"):
        s.check_accuracy(data["X_val"][:n_x], data["y_val"][:n_y])


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam",
                                  "adamw"])
def test_every_update_rule_is_accepted_by_name_and_listed_on_a_typo(rule):
    solver = quiet(TinyNet(), blobs(), update_rule=rule, num_epochs=1, batch_size=10)
    solver.train()
    assert solver._rule is getattr(optim, rule)
    with pytest.raises(ValueError, match=repr(rule)):
        Solver(TinyNet(), blobs(), update_rule=rule + "_typo")


def test_bad_data():
    data = blobs()
    del data["y_val"]
    with pytest.raises(ValueError, match="'y_val' is missing"):
        Solver(TinyNet(), data)
    data = blobs()
    data["y_train"] = data["y_train"][:-1]
    with pytest.raises(ValueError, match="must match"):
        Solver(TinyNet(), data)


@pytest.mark.parametrize("key", ["X_val", "y_val"])
def test_an_empty_validation_set_is_refused(key):
    # It used to train, score 0.0 on no images every epoch and hand back the untrained
    # initial weights as best_params.
    data = blobs()
    data["X_val"], data["y_val"] = data["X_val"][:0], data["y_val"][:0]
    with pytest.raises(ValueError, match="X_val is empty.*best_params"):
        Solver(TinyNet(), data)


@pytest.mark.parametrize("kw, match", [
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": 2.5}, r"batch_size must be a positive integer, got 2\.5"),
    ({"num_samples": 0}, "num_samples must be a positive integer, got 0"),
    ({"num_samples": -5}, "num_samples must be a positive integer, got -5"),
    ({"num_samples": "10"}, "num_samples must be a positive integer, got '10'"),
])
def test_check_accuracy_refuses_bad_sizes(kw, match):
    data = blobs()
    s = quiet(TinyNet(), data)
    with pytest.raises(ValueError, match=f"check_accuracy: {match}"):
        s.check_accuracy(data["X_val"], data["y_val"], **kw)


def test_defaults_follow_the_course():
    s = Solver(TinyNet(), blobs())
    assert (s.update_rule, s.lr_decay, s.batch_size, s.num_epochs) == ("sgd", 1.0, 100, 10)
    assert (s.num_train_samples, s.num_val_samples, s.checkpoint_name) == (1000, None, None)
    assert (s.print_every, s.verbose) == (10, True)


def test_histories_and_best_params():
    model, data = TinyNet(), blobs()
    s = quiet(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
              num_epochs=3, batch_size=20, seed=0)
    s.train()
    iters = 3 * (200 // 20)
    assert len(s.loss_history) == iters and all(np.isfinite(s.loss_history))
    # one check at the first iteration, one per epoch (the last iteration ends an epoch)
    assert len(s.train_acc_history) == len(s.val_acc_history) == 1 + 3
    assert s.best_val_acc == max(s.val_acc_history)
    for k in model.params:
        assert np.array_equal(model.params[k], s.best_params[k])
        assert model.params[k] is not s.best_params[k]
    # the parameters left in the model are the ones that scored best_val_acc on the whole val set
    assert s.check_accuracy(data["X_val"], data["y_val"]) == s.best_val_acc
    assert s.loss_history[-1] < s.loss_history[0]
    assert len(s.epoch_times) == 3 and all(t > 0 for t in s.epoch_times)


def test_a_tie_in_val_accuracy_keeps_the_first_best_params():
    # The course's Solver keeps the first best (val_acc > best_val_acc): a later check that only
    # ties it must not replace best_params. Doubling every weight (the biases start at zero and
    # stay zero) multiplies the scores by 4: the parameters change at every step, exactly in
    # floating point, while every prediction, and so the accuracy, stays the same.
    def double(w, dw, config=None):
        return 2 * w, config

    model, data = TinyNet(seed=1, noise=False), blobs()  # seed 0 starts at an accuracy of 0
    initial = {k: v.copy() for k, v in model.params.items()}
    s = quiet(model, data, update_rule=double, num_epochs=2, batch_size=50, seed=0)
    s.train()
    # checks after steps 1, 4 and 8, all with the same accuracy
    assert len(s.val_acc_history) == 3 and len(set(s.val_acc_history)) == 1
    assert s.best_val_acc == s.val_acc_history[0] > 0
    for k, v in initial.items():
        # the parameters of the first check, after one step
        np.testing.assert_array_equal(s.best_params[k], 2 * v)
        np.testing.assert_array_equal(model.params[k], 2 * v)


def test_tiny_model_overfits_small_data():
    data = blobs(n_train=20, n_val=20, seed=4)
    model = TinyNet(H=32, noise=False, seed=2)
    s = quiet(model, data, update_rule="adam", optim_config={"learning_rate": 2e-2},
              num_epochs=60, batch_size=10, seed=1)
    s.train()
    assert s.train_acc_history[-1] == 1.0
    assert s.loss_history[-1] < 0.05


def test_solver_trains_a_two_layer_net_on_real_images():
    # The course's Solver exercise (a TwoLayerNet past 50% on CIFAR-10 validation), here on
    # the shipped Fashion-MNIST sample, where such a net passes 80% within a few epochs.
    s = load_sample()
    X = s["X_train"].reshape(len(s["X_train"]), -1) / 255.0
    mean = X[:8000].mean(axis=0)
    data = dict(X_train=X[:8000] - mean, y_train=s["y_train"][:8000],
                X_val=X[8000:] - mean, y_val=s["y_train"][8000:])
    np.random.seed(0)
    model = TwoLayerNet(input_dim=784, hidden_dim=100, weight_scale=1e-2)
    solver = quiet(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 5e-2},
                   lr_decay=0.95, num_epochs=5, batch_size=100)
    solver.train()
    assert solver.best_val_acc > 0.8
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


@pytest.mark.parametrize("rule", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_lr_decay_applied_per_epoch_and_configs_per_parameter(rule):
    config = {"learning_rate": 1e-3}
    s = quiet(TinyNet(), blobs(), update_rule=rule, optim_config=config, lr_decay=0.5,
              num_epochs=3, batch_size=50, seed=0)
    s.train()
    assert config == {"learning_rate": 1e-3}          # the user's dict is left alone
    ids = {id(c) for c in s.optim_configs.values()}
    assert len(ids) == len(s.model.params)            # one config (and state) per parameter
    for c in s.optim_configs.values():
        assert c["learning_rate"] == pytest.approx(1e-3 * 0.5 ** 3, rel=1e-12)
    if rule == "adam":
        assert all(c["t"] == 3 * 4 for c in s.optim_configs.values())


def test_update_rule_function_and_dtype_preserved():
    calls = []

    def halve_sgd(w, dw, config=None):
        calls.append(1)
        return optim.sgd(w, dw, config)

    model = TinyNet(dtype=np.float32)
    data = blobs(dtype=np.float32)
    s = quiet(model, data, update_rule=halve_sgd, num_epochs=1, batch_size=50, seed=0)
    s.train()
    assert len(calls) == 4 * len(model.params)
    assert all(v.dtype == np.float32 for v in model.params.values())


def test_seed_makes_runs_reproducible():
    a, b, c = (quiet(TinyNet(noise=False), blobs(), update_rule="adam", num_epochs=2,
                     batch_size=20, seed=seed) for seed in (7, 7, 8))
    for s in (a, b, c):
        s.train()
    assert a.loss_history == b.loss_history
    assert a.loss_history != c.loss_history


def test_without_a_seed_np_random_seed_makes_runs_reproducible():
    # The course's notebooks call np.random.seed(...) and expect the Solver to follow it.
    state = np.random.get_state()
    try:
        runs = []
        for global_seed in (3, 3, 4):
            np.random.seed(global_seed)
            s = quiet(TinyNet(noise=False), blobs(), update_rule="adam", num_epochs=2, batch_size=20)
            s.train()
            runs.append(s.loss_history)
    finally:
        np.random.set_state(state)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


class NaNAfter(TinyNet):
    """Returns a NaN loss at training call number ``n``."""

    def __init__(self, n, **kw):
        super().__init__(**kw)
        self.n, self.calls = n, 0

    def loss(self, X, y=None):
        out = super().loss(X, y)
        if y is None:
            return out
        self.calls += 1
        return (np.nan if self.calls == self.n else out[0]), out[1]


def test_nan_loss_stops_with_iteration_named_and_best_params_kept():
    model = NaNAfter(n=27)
    s = quiet(model, blobs(), update_rule="adam", optim_config={"learning_rate": 2e-3},
              lr_decay=0.5, num_epochs=5, batch_size=20, seed=0)
    with pytest.raises(TrainingDivergedError, match=r"iteration 27 \(epoch 3 of 5\).*now 0\.0005\)") as err:
        s.train()
    assert isinstance(err.value, FloatingPointError)
    assert len(s.loss_history) == 26
    for k in model.params:
        assert np.array_equal(model.params[k], s.best_params[k])
        assert np.all(np.isfinite(model.params[k]))


def test_inf_loss_at_first_iteration_keeps_initial_params():
    model = NaNAfter(n=1)
    before = {k: v.copy() for k, v in model.params.items()}
    model.loss = (lambda f: lambda X, y=None: f(X, y) if y is None else (np.inf, f(X, y)[1]))(model.loss)
    s = quiet(model, blobs(), num_epochs=1, batch_size=20, seed=0)
    with pytest.raises(TrainingDivergedError, match="iteration 1 "):
        s.train()
    for k in before:
        assert np.array_equal(model.params[k], before[k])


def test_checkpoint_each_epoch_and_resume_in_process(tmp_path):
    name = str(tmp_path / "run")
    full = run(checkpoint_name=name, num_epochs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run_epoch_{e}.npz" for e in range(1, 5)]
    assert latest_checkpoint(name).endswith("run_epoch_4.npz")
    # resume from the end of epoch 2 of the same recipe: identical finish
    resumed = run(resume_from=f"{name}_epoch_2.npz", num_epochs=4)
    for k in full.model.params:
        assert np.array_equal(full.model.params[k], resumed.model.params[k])
    assert full.loss_history == resumed.loss_history
    assert full.val_acc_history == resumed.val_acc_history
    assert np.array_equal(full.model.stat_params[0]["running_mean"],
                          resumed.model.stat_params[0]["running_mean"])


def test_keep_checkpoints_prunes_old_epochs(tmp_path):
    s = quiet(TinyNet(), blobs(), num_epochs=4, batch_size=50, keep_checkpoints=2,
              checkpoint_name=str(tmp_path / "k"))
    s.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k_epoch_3.npz", "k_epoch_4.npz"]
    with pytest.raises(ValueError, match="keep_checkpoints must be a positive integer, got 0"):
        quiet(TinyNet(), blobs(), keep_checkpoints=0)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    s = quiet(TinyNet(), blobs(), num_epochs=1, batch_size=50, checkpoint_name=str(tmp_path / "c"))
    s.train()
    other = quiet(TinyNet(H=5), blobs(), batch_size=50)
    with pytest.raises(CheckpointError, match="does not fit this model") as e:
        other.resume(tmp_path / "c_epoch_1.npz")
    # Only what differs is named, with both shapes.
    assert re.search(r"W1 is \(\d+, \d+\) float64 in the checkpoint, \(\d+, 5\) float64 in the model",
                     str(e.value))
    assert "b2 is" not in str(e.value)

    class WiderNet(TinyNet):
        pass

    with pytest.raises(CheckpointError, match="written for a TinyNet, this is a WiderNet"):
        quiet(WiderNet(H=5), blobs(), batch_size=50).resume(tmp_path / "c_epoch_1.npz")


@pytest.mark.parametrize("state, lacks", [
    ({"x": 1}, "lacks params, best_params"),
    ({"params": {}}, "lacks best_params, model_state"),
    ([1, 2, 3], "lacks params, best_params"),
    ({**{k: 0 for k in ("best_params", "model_state", "optim_configs", "batch_size", "epoch",
                        "iteration", "loss_history", "train_acc_history", "val_acc_history",
                        "best_val_acc", "rng_state", "numpy_global_rng")},
      "params": [1.0]}, "its 'params' is not a dict of arrays"),
])
def test_resume_refuses_a_checkpoint_that_is_not_a_solvers(tmp_path, state, lacks):
    # A valid toolkit checkpoint of other state used to fail with KeyError: 'params'.
    path = save_checkpoint(tmp_path / "other.npz", state)
    with pytest.raises(CheckpointError, match="other.npz is.* not a Solver") as e:
        quiet(TinyNet(), blobs()).resume(path)
    assert lacks in str(e.value)


def test_sigkill_mid_run_then_resume_is_identical_to_uninterrupted(tmp_path):
    name = str(tmp_path / "killed")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "tests.deep_learning_suite._tiny_model",
                             name, "0.02"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(f"{name}_epoch_1.npz"):
            assert proc.poll() is None, "training script exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.005)
        time.sleep(0.05)                      # into the middle of the next epoch
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    last = latest_checkpoint(name)
    assert not last.endswith("_epoch_8.npz")
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]

    resumed = run(resume_from=last)
    uninterrupted = run()
    for k in uninterrupted.model.params:
        assert np.array_equal(resumed.model.params[k], uninterrupted.model.params[k])
    assert resumed.loss_history == uninterrupted.loss_history
    assert resumed.best_val_acc == uninterrupted.best_val_acc


def test_verbose_prints_progress(capsys):
    s = Solver(TinyNet(), blobs(), num_epochs=1, batch_size=50, print_every=2, seed=0)
    s.train()
    out = capsys.readouterr()
    text = out.out + out.err
    assert "(Iteration 1 / 4) loss:" in text
    assert "(Epoch 1 / 1) train acc:" in text


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys):
    # Under capsys stderr is a pipe, as in a log file or CI: the messages stay, the bar's
    # redraws (a line of carriage returns per update) do not.
    s = Solver(TinyNet(), blobs(), num_epochs=2, batch_size=50, print_every=2, seed=0)
    s.train()
    out = capsys.readouterr()
    assert "(Epoch 2 / 2) train acc:" in out.out
    assert "training:" not in out.err and "\r" not in out.err and "it/s" not in out.err


def test_messages_during_training_go_through_the_progress_bar(tmp_path, monkeypatch, capsys):
    # A bare print() while a tqdm bar is on screen lands in the middle of the bar's line;
    # tqdm.write clears the bar first. So nothing may reach stdout but through the bar.
    import tqdm.auto

    written = []

    class RecordingBar:
        def __init__(self, *args, **kwargs):
            pass

        def update(self, n=1):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def write(self, msg):
            written.append(msg)

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    s = Solver(TinyNet(), blobs(), num_epochs=2, batch_size=50, print_every=2, seed=0,
               checkpoint_name=str(tmp_path / "run"))
    s.train()
    assert capsys.readouterr().out == ""
    assert any(m.startswith("Saving checkpoint to ") and m.endswith("run_epoch_2.npz")
               for m in written)
    assert any(m.startswith("(Epoch 2 / 2) train acc:") for m in written)


# ----------------------------------------------------------------------------- audit fixes

def _recipe(**kw):
    """The ``run()`` recipe as keyword arguments (same model seed, rule and schedule)."""
    opts = dict(update_rule="adam", optim_config={"learning_rate": 1e-2}, lr_decay=0.9,
                num_epochs=4, batch_size=20, num_train_samples=50, seed=3)
    opts.update(kw)
    return {k: v for k, v in opts.items() if v is not None}


def test_resume_without_optim_config_takes_the_checkpoints_and_is_exact(tmp_path):
    name = str(tmp_path / "run")
    full = run(checkpoint_name=name, num_epochs=4)
    np.random.seed(5)
    resumed = quiet(TinyNet(seed=1), blobs(), **_recipe(optim_config=None),
                    resume_from=f"{name}_epoch_2.npz")
    resumed.train()
    assert resumed.loss_history == full.loss_history
    for k in full.model.params:
        assert np.array_equal(full.model.params[k], resumed.model.params[k])


@pytest.mark.parametrize("kw, match", [
    ({"update_rule": "sgd"}, "trained with update_rule 'adam', this Solver uses 'sgd'"),
    ({"update_rule": optim.rmsprop}, "trained with update_rule 'adam', this Solver uses 'rmsprop'"),
    ({"lr_decay": 1.0}, "trained with lr_decay 0.9, this Solver uses 1.0"),
    ({"optim_config": {"learning_rate": 1e-5}}, r"optim_config differs .*learning_rate is 0\.01 in "
                                                r"the checkpoint, 1e-05 here"),
    ({"optim_config": {"learning_rate": 1e-2, "beta1": 0.5}},
     "optim_config differs .*beta1 is not in the checkpoint's, 0.5 here"),
    ({"optim_config": {}}, r"optim_config differs .*learning_rate is 0\.01 in the checkpoint, "
                           r"not given here"),
])
def test_resume_refuses_another_update_rule_lr_decay_or_optim_config(tmp_path, kw, match):
    # The checkpoint's optimizer state used to be kept without a word while the user asked
    # for another rule or learning rate: neither the run they asked for nor an exact resume.
    name = str(tmp_path / "run")
    run(checkpoint_name=name, num_epochs=2)
    model = TinyNet(seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    solver = quiet(model, blobs(), **_recipe(**kw))
    with pytest.raises(CheckpointError, match=f"{name}_epoch_2.npz.*{match}"):
        solver.resume(f"{name}_epoch_2.npz")
    assert all(np.array_equal(before[k], model.params[k]) for k in before)    # nothing taken


@pytest.mark.parametrize("with_epochs", [True, False])
def test_resume_refuses_the_file_saved_after_train(tmp_path, with_epochs):
    # After train() the model holds best_params, while the epoch, iteration and optimizer
    # state are the last iteration's: a file saved then (the CLI's model.npz) is not a point
    # training can continue from exactly.
    name = str(tmp_path / "run")
    s = run(checkpoint_name=name if with_epochs else None, num_epochs=2)
    s.save_checkpoint(tmp_path / "model.npz")
    with pytest.raises(CheckpointError, match="model.npz holds the best-validation weights, not "
                                              "the last iteration's") as e:
        quiet(TinyNet(seed=1), blobs(), **_recipe()).resume(tmp_path / "model.npz")
    if with_epochs:
        assert f"resume from {name}_epoch_2.npz" in str(e.value)
    else:
        assert f"there is none in {tmp_path}" in str(e.value)


def _forge(src, dst, **changes):
    from deep_learning_suite.checkpoint import load_checkpoint

    state = load_checkpoint(src)
    state.update(changes)
    return save_checkpoint(dst, state)          # a valid checksum: only the contents are wrong


@pytest.mark.parametrize("changes, match", [
    ({"numpy_global_rng": [1, 2]}, "numpy_global_rng is not"),
    ({"numpy_global_rng": ["MT19937", [1, 2, 3], 0, 0, 0.0]}, "numpy_global_rng is not"),
    ({"numpy_global_rng": "MT19937"}, "numpy_global_rng is not"),
    ({"rng_state": {"bit_generator": "MT19937"}}, "rng_state is not"),
    ({"rng_state": [1, 2]}, "rng_state is not"),
    ({"rng_state": {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}}},
     "rng_state is not"),
])
def test_resume_refuses_a_malformed_random_state(tmp_path, changes, match):
    name = str(tmp_path / "run")
    run(checkpoint_name=name, num_epochs=1)
    bad = _forge(f"{name}_epoch_1.npz", tmp_path / "forged.npz", **changes)
    model = TinyNet(seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    legacy = np.random.get_state()
    with pytest.raises(CheckpointError, match=f"forged.npz: its {match} a random generator's state"):
        quiet(model, blobs(), **_recipe()).resume(bad)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)    # nothing taken
    assert np.array_equal(np.random.get_state()[1], legacy[1])


def _params_like(path, **changes):
    from deep_learning_suite.checkpoint import load_checkpoint

    best = load_checkpoint(path)["best_params"]
    return {**best, **changes}


@pytest.mark.parametrize("changes, match", [
    ({"epoch": "1"}, "its epoch is '1', not a count of 0 or more"),
    ({"epoch": None}, "its epoch is None, not a count"),
    ({"epoch": True}, "its epoch is True, not a count"),
    ({"epoch": 1.0}, "its epoch is 1.0, not a count"),
    ({"epoch": -5}, "its epoch is -5, not a count"),
    ({"iteration": -1}, "its iteration is -1, not a count"),
    ({"loss_history": "0.5"}, "its loss_history is not a list of numbers"),
    ({"train_acc_history": [0.5, "x"]}, "its train_acc_history is not a list of numbers"),
    ({"val_acc_history": [True]}, "its val_acc_history is not a list of numbers"),
    ({"best_val_acc": None}, "its best_val_acc is None, not a number"),
    ({"best_params": [1, 2]}, "its best_params are not arrays of the model's parameters"),
    ({"best_params": {}}, "its best_params are not arrays"),
    ("W1 as float32", "its best_params are not arrays"),
    ("W1 transposed", "its best_params are not arrays"),
    ({"optim_configs": {}}, "its optim_configs are not one dict per parameter"),
    ({"optim_configs": [1]}, "its optim_configs are not one dict"),
    ({"model_state": [1]}, "its model_state is not a dict"),
])
def test_resume_refuses_damaged_counters_histories_and_best_params(tmp_path, changes, match):
    # A valid checksum over contents no Solver wrote: refused up front rather than failing,
    # or printing "True epochs", in train().
    name = str(tmp_path / "run")
    run(checkpoint_name=name, num_epochs=1)
    src = f"{name}_epoch_1.npz"
    if changes == "W1 as float32":
        changes = {"best_params": _params_like(src, W1=_params_like(src)["W1"].astype(np.float32))}
    elif changes == "W1 transposed":
        changes = {"best_params": _params_like(src, W1=_params_like(src)["W1"].T.copy())}
    bad = _forge(src, tmp_path / "forged.npz", **changes)
    model = TinyNet(seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    solver = quiet(model, blobs(), **_recipe())
    with pytest.raises(CheckpointError, match=f"forged.npz: {re.escape(match)}"):
        solver.resume(bad)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)    # nothing taken
    assert solver.epoch == 0 and solver.loss_history == []


def test_a_second_train_call_warns_and_more_epochs_train_further():
    s = quiet(TinyNet(), blobs(), update_rule="adam", num_epochs=2, batch_size=20, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the first call warns about nothing
        s.train()
    n = len(s.loss_history)
    with pytest.warns(UserWarning, match="already trained its num_epochs=2 epochs.*raise "
                                         "solver.num_epochs to train further"):
        s.train()
    assert len(s.loss_history) == n and s.epoch == 2
    s.num_epochs = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.train()
    assert len(s.loss_history) == n + n // 2 and s.epoch == 3


@pytest.mark.parametrize("warn_first", [False, True])
def test_more_epochs_after_train_continue_exactly_like_one_longer_run(warn_first):
    # train() ends with best_params in the model; going on from those (with the last
    # iteration's optimizer state) would be neither this run nor any other.
    data = blobs()
    # noise=False: TinyNet's dropout noise draws from the global generator
    whole = quiet(TinyNet(noise=False), data, update_rule="adam", num_epochs=3, batch_size=20, seed=0)
    whole.train()
    split = quiet(TinyNet(noise=False), data, update_rule="adam", num_epochs=2, batch_size=20, seed=0)
    split.train()
    if warn_first:          # a call that trains nothing must not lose the last parameters
        with pytest.warns(UserWarning, match="already trained"):
            split.train()
    split.num_epochs = 3
    split.train()
    assert split.loss_history == whole.loss_history
    for k in whole.best_params:
        np.testing.assert_array_equal(split.best_params[k], whole.best_params[k])
        np.testing.assert_array_equal(split.model.params[k], whole.model.params[k])


def test_a_fresh_solver_with_no_epochs_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(TinyNet(), blobs(), num_epochs=0).train()


def test_a_checkpoint_that_records_no_optim_config_still_resumes(tmp_path):
    # Checkpoints from before optim_config was recorded have nothing to compare with; nor
    # have those of a run resumed from one, so they do not claim the config was {}.
    from deep_learning_suite.checkpoint import load_checkpoint

    name = str(tmp_path / "run")
    run(checkpoint_name=name, num_epochs=2)
    state = load_checkpoint(f"{name}_epoch_2.npz")
    del state["optim_config"]
    save_checkpoint(tmp_path / "old.npz", state)
    s = quiet(TinyNet(seed=1), blobs(), **_recipe(optim_config=None, num_epochs=3),
              checkpoint_name=str(tmp_path / "next"), resume_from=tmp_path / "old.npz")
    s.train()
    assert load_checkpoint(tmp_path / "next_epoch_3.npz")["optim_config"] is None
    quiet(TinyNet(seed=1), blobs(), **_recipe(num_epochs=4)).resume(tmp_path / "next_epoch_3.npz")


@pytest.mark.parametrize("make", [float, np.float32, "tensor"])
def test_check_finite_loss_reads_floats_and_tensors_quietly(make):
    # The torch loops pass a loss that requires grad; float() of one warns on every batch.
    if make == "tensor":
        torch = pytest.importorskip("torch")
        w = torch.tensor(1.0, requires_grad=True)

        def make(v):
            return w * v
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_finite_loss(make(2.0), "the loss", "at batch 1", "lower the learning rate")
    with pytest.raises(TrainingDivergedError, match="the loss is nan at batch 3; lower"):
        check_finite_loss(make(float("nan")), "the loss", "at batch 3", "lower the learning rate")


def test_resume_restores_the_best_accuracy_and_params_before_training(tmp_path):
    # Without them a worse epoch after resuming would overwrite best_params.
    name = str(tmp_path / "run")
    first = run(checkpoint_name=name, num_epochs=2)
    np.random.seed(5)
    s = Solver(TinyNet(seed=1), blobs(), update_rule="adam", optim_config={"learning_rate": 1e-2},
               lr_decay=0.9, num_epochs=4, batch_size=20, verbose=False, seed=3,
               resume_from=f"{name}_epoch_2.npz")
    assert s.best_val_acc == first.best_val_acc == max(first.val_acc_history) > 0
    for k, v in first.best_params.items():
        assert np.array_equal(s.best_params[k], v)


class _FixedPredictions:
    """Scores whose argmax is ``pred``, whatever the input rows are (they index into it)."""

    def __init__(self, pred, C=3):
        self.params, self.pred, self.C = {}, np.asarray(pred), C

    def loss(self, X, y=None):
        scores = np.zeros((len(X), self.C))
        scores[np.arange(len(X)), self.pred[X[:, 0].astype(int)]] = 1.0
        return scores


@pytest.mark.parametrize("batch_size", [3, 7, 100])
def test_check_accuracy_counts_every_row_exactly(batch_size):
    # 4 of 7 right, the wrong ones including the last row; batch 3 leaves a partial last batch.
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    pred = np.array([0, 1, 2, 0, 2, 0, 1])
    X = np.arange(7, dtype=np.float64)[:, None]
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    s = quiet(_FixedPredictions(pred), data)
    assert s.check_accuracy(X, y, batch_size=batch_size) == pytest.approx(4 / 7)
    # num_samples equal to N uses every row, not a subsample of N - 1
    assert s.check_accuracy(X, y, num_samples=7, batch_size=batch_size) == pytest.approx(4 / 7)


def test_a_rule_that_returns_a_new_config_sees_it_at_the_next_step():
    seen = []

    def counting_sgd(w, dw, config=None):
        config = dict(config or {}, t=(config or {}).get("t", 0) + 1)  # a new dict each step
        seen.append(config["t"])
        return w - 1e-3 * dw, config

    s = quiet(TinyNet(), blobs(), update_rule=counting_sgd, num_epochs=1, batch_size=50)
    s.train()  # 200 / 50 = 4 steps, 4 parameters
    assert seen[-4:] == [4, 4, 4, 4]


def test_an_epoch_is_n_over_batch_size_steps_rounded_down():
    # The course's floor: 250 rows, batch 100 -> 2 steps an epoch; 2 epochs -> 4 steps, 2 decays.
    data = blobs(n_train=250)
    s = quiet(TinyNet(), data, num_epochs=2, batch_size=100, lr_decay=0.5,
              optim_config={"learning_rate": 1e-2})
    s.train()
    assert len(s.loss_history) == 4
    assert all(c["learning_rate"] == pytest.approx(1e-2 * 0.5 ** 2) for c in s.optim_configs.values())
