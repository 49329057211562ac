import contextlib
import csv
import io
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from deep_learning_suite.checkpoint import load_checkpoint, save_checkpoint
from deep_learning_suite.cli import build_parser, main

SMALL = ["--dataset", "sample", "--num-train", "400", "--num-val", "100", "--num-test", "300",
         "--quiet"]


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    for var in ("CIFAR10_DIR", "FASHION_MNIST_DIR", "MNIST_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def summary_accuracy(text):
    return float(re.search(r"test accuracy (\d\.\d+)", text).group(1))


@pytest.fixture(scope="module")
def fc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fc")
    argv = ["train", "--model", "fc", "--hidden-dims", "32", "--epochs", "2",
            "--normalization", "batchnorm", "--dropout", "0.9", "--lr", "3e-3", "--out", str(out)] + SMALL
    return out, argv


def test_train_fc_end_to_end_then_evaluate(fc_run, capsys):
    out, argv = fc_run
    assert main(argv) == 0
    text = capsys.readouterr().out
    acc = summary_accuracy(text)
    assert acc > 0.35                    # 400 images, 2 epochs; chance is 0.1
    assert "wall time" in text
    for name in ("checkpoint_epoch_1.npz", "checkpoint_epoch_2.npz", "model.npz", "history.csv",
                 "loss.png", "accuracy.png", "filters.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert rows[-1]["iteration"] == str(2 * (400 // 100))
    meta = load_checkpoint(out / "model.npz")["meta"]
    assert meta["model"] == "fc" and len(meta["normalization"]["mean"]) == 1
    # the checkpoint keeps batchnorm's running statistics for evaluation
    assert "bn_params" in load_checkpoint(out / "model.npz")["model_state"]

    assert main(["evaluate", str(out / "model.npz"), "--num-test", "300"]) == 0
    ev = capsys.readouterr().out
    assert float(re.search(r"accuracy (\d\.\d+)", ev).group(1)) == pytest.approx(acc, abs=1e-4)
    assert "Ankle boot" in ev and "Trouser" in ev
    # the run's folder stands for its model.npz
    assert main(["evaluate", str(out), "--num-test", "300"]) == 0
    assert re.search(r"accuracy (\d\.\d+)", capsys.readouterr().out).group(1) == \
        re.search(r"accuracy (\d\.\d+)", ev).group(1)


def test_resume_from_cli_matches_uninterrupted(fc_run, tmp_path, capsys):
    out, argv = fc_run
    if not (out / "model.npz").exists():
        assert main(argv) == 0
    assert main(["train", "--resume", str(out / "checkpoint_epoch_1.npz"),
                 "--out", str(tmp_path), "--quiet"]) == 0
    a = load_checkpoint(out / "model.npz")["params"]
    b = load_checkpoint(tmp_path / "model.npz")["params"]
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_without_out_writes_on_into_the_checkpoints_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)              # a wrong default would land in ./runs/
    out = tmp_path / "stopped"
    argv = ["train", "--model", "fc", "--hidden-dims", "16", "--epochs", "2", "--out", str(out)]
    assert main(argv + SMALL) == 0
    finished = load_checkpoint(out / "model.npz")["params"]
    (out / "model.npz").unlink()
    assert main(["train", "--resume", str(out / "checkpoint_epoch_1.npz"), "--quiet"]) == 0
    assert not (tmp_path / "runs").exists()
    resumed = load_checkpoint(out / "model.npz")["params"]
    assert all(np.array_equal(finished[k], resumed[k]) for k in finished)


def test_adamw_from_the_cli_uses_its_weight_decay_and_resumes(tmp_path, capsys):
    argv = ["train", "--model", "fc", "--hidden-dims", "32", "--epochs", "2",
            "--update-rule", "adamw", "--weight-decay", "0.05", "--out", str(tmp_path)] + SMALL
    assert main(argv) == 0
    assert summary_accuracy(capsys.readouterr().out) > 0.25
    ck = load_checkpoint(tmp_path / "model.npz")
    assert ck["update_rule"] == "adamw"
    assert {c["weight_decay"] for c in ck["optim_configs"].values()} == {0.05}

    # A checkpoint from before --weight-decay existed (no such key in its settings) resumes.
    old = load_checkpoint(tmp_path / "checkpoint_epoch_1.npz")
    del old["meta"]["args"]["weight_decay"]
    save_checkpoint(tmp_path / "old.npz", old)
    assert main(["train", "--resume", str(tmp_path / "old.npz"), "--out",
                 str(tmp_path / "resumed"), "--quiet"]) == 0
    resumed = load_checkpoint(tmp_path / "resumed" / "model.npz")
    assert all(np.array_equal(resumed["params"][k], ck["params"][k]) for k in ck["params"])


def test_adamw_takes_a_weight_decay_of_zero(tmp_path, capsys):
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1", "--update-rule", "adamw",
                 "--weight-decay", "0", "--out", str(tmp_path)] + SMALL) == 0
    ck = load_checkpoint(tmp_path / "model.npz")
    assert {c["weight_decay"] for c in ck["optim_configs"].values()} == {0}
    assert main(["train", "--resume", str(tmp_path / "checkpoint_epoch_1.npz"), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0                # a saved --weight-decay 0 is one `train` wrote


def test_lr_decay_from_the_cli_decays_the_learning_rate_each_epoch(tmp_path, capsys):
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "2", "--lr", "1e-3",
                 "--lr-decay", "0.5", "--out", str(tmp_path)] + SMALL) == 0
    ck = load_checkpoint(tmp_path / "model.npz")
    assert ck["lr_decay"] == 0.5
    rates = [c["learning_rate"] for c in ck["optim_configs"].values()]
    assert rates and rates == pytest.approx([1e-3 * 0.5 ** 2] * len(rates))     # after 2 epochs


def test_train_keeps_the_newest_two_epoch_checkpoints(tmp_path, capsys):
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "3", "--out", str(tmp_path)]
                + SMALL) == 0
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch_*.npz")) == \
        ["checkpoint_epoch_2.npz", "checkpoint_epoch_3.npz"]


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_prints_only_the_summary_line(quiet, tmp_path, capsys):
    argv = ["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1", "--out", str(tmp_path)] + SMALL
    assert main(argv if quiet else [a for a in argv if a != "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("fc on sample: test accuracy") and (len(lines) == 1) == quiet
    right, total = map(int, re.search(r"test accuracy \d\.\d+ \((\d+)/(\d+)\)", lines[-1]).groups())
    assert total == 300 and right / total == pytest.approx(summary_accuracy(lines[-1]), abs=1e-4)


def test_train_without_out_writes_into_runs_model_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1"] + SMALL) == 0
    assert (tmp_path / "runs" / "fc-sample" / "model.npz").is_file()
    assert "wrote runs/fc-sample/" in capsys.readouterr().out


def test_train_cnn_small_slice(tmp_path, capsys):
    assert main(["train", "--model", "cnn", "--epochs", "3", "--batch-size", "20", "--lr", "3e-3",
                 "--weight-scale", "0.1", "--num-filters", "4", "--filter-size", "3",
                 "--hidden-dim", "16", "--out", str(tmp_path)] + SMALL) == 0
    assert summary_accuracy(capsys.readouterr().out) > 0.45
    assert load_checkpoint(tmp_path / "model.npz")["params"]["W1"].shape == (4, 1, 3, 3)
    assert (tmp_path / "filters.png").exists()


def test_gradcheck_passes_and_prints_a_table(capsys):
    assert main(["gradcheck"]) == 0
    text = capsys.readouterr().out
    for name in ("affine", "relu", "softmax_loss", "svm_loss", "batchnorm", "layernorm",
                 "spatial_groupnorm", "dropout", "conv_naive", "conv_fast", "max_pool_naive",
                 "max_pool_fast", "FullyConnectedNet", "ThreeLayerConvNet"):
        assert re.search(rf"^{name}\s.*PASS$", text, re.M), name
    assert "FAIL" not in text


def test_gradcheck_reports_a_failure(monkeypatch, capsys):
    from deep_learning_suite import gradcheck, layers
    monkeypatch.setattr(layers, "relu_backward", lambda dout, x: dout)   # wrong for x < 0
    assert main(["gradcheck", "--only", "relu"]) == 1
    assert re.search(r"^relu\s.*FAIL$", capsys.readouterr().out, re.M)
    assert gradcheck.run("no-such-check") == 2


@pytest.mark.parametrize("argv, match", [
    (["train", "--model", "mlp"], "invalid choice: 'mlp'"),
    (["train", "--dropout", "1.5"], "KEEPING"),
    (["train", "--hidden-dims", "64,x"], "comma-separated integers"),
    (["train", "--epochs", "0"], "must be positive"),
    (["train", "--dataset", "imagenet"], "invalid choice"),
    (["fly"], "invalid choice"),
    ([], r"the following arguments are required: \{train,evaluate,gradcheck\}"),
])
def test_bad_flags_exit_2_with_a_clear_message(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("argv, match", [
    (["train", "--model", "cnn", "--normalization", "batchnorm"], "apply to --model fc"),
    (["train", "--model", "cnn", "--filter-size", "4"], "must be odd"),
    (["train", "--num-val", "20000"], "--num-val must be between"),
    (["train", "--weight-decay", "0.1"], "AdamW's decoupled decay.*use --reg"),
    (["train", "--update-rule", "adamw", "--weight-decay", "-1"], "must be >= 0"),
])
def test_incompatible_flags_give_an_error(argv, match, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path), "--quiet"]) == 2
    assert re.search(match, capsys.readouterr().err)


def no_network(monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("it downloaded despite --no-download")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("dataset, env", [("cifar10", "CIFAR10_DIR"), ("mnist", "MNIST_DIR"),
                                          ("fashion-mnist", "FASHION_MNIST_DIR")])
def test_missing_data_is_a_clear_error(dataset, env, tmp_path, capsys, monkeypatch):
    no_network(monkeypatch)                 # --no-download: not even a try
    rc = main(["train", "--dataset", dataset, "--data-dir", str(tmp_path / "none"),
               "--no-download", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert env in err and str(tmp_path / "none") in err


@pytest.mark.parametrize("dataset, env", [("cifar10", "CIFAR10_DIR"), ("mnist", "MNIST_DIR")])
def test_evaluate_with_missing_data_is_a_clear_error(bn_run, dataset, env, tmp_path, capsys, monkeypatch):
    no_network(monkeypatch)
    assert main(["evaluate", str(bn_run), "--dataset", dataset, "--data-dir", str(tmp_path / "none"),
                 "--no-download"]) == 2
    err = capsys.readouterr().err
    assert env in err and str(tmp_path / "none") in err


def test_evaluate_refuses_a_damaged_checkpoint(tmp_path, capsys):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["evaluate", str(bad)]) == 2
    assert "model.npz" in capsys.readouterr().err


def test_evaluate_a_folder_without_model_npz_says_so(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no model.npz" in err


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "deep_learning_suite", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "train" in r.stdout and "gradcheck" in r.stdout


# ----------------------------------------------------------------------------- audit fixes

@pytest.fixture(scope="module")
def bn_run(tmp_path_factory):
    """A finished fc run with batchnorm (so its model_state holds running statistics)."""
    out = tmp_path_factory.mktemp("bn")
    assert main(["train", "--model", "fc", "--hidden-dims", "16,8", "--normalization",
                 "batchnorm", "--epochs", "1", "--lr", "3e-3", "--out", str(out)] + SMALL) == 0
    return out


def _edited(src, dst, edit):
    state = load_checkpoint(src)
    edit(state)
    save_checkpoint(dst, state)             # a valid checksum: only the contents are wrong
    return dst


def _set(*keys_value):
    *keys, value = keys_value

    def edit(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def _pop(*keys):
    def edit(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit


@pytest.mark.parametrize("edit, match", [
    (_pop("params", "W2"), "only in the model: W2"),
    (_set("params", "W9", np.ones(3, np.float32)), "only in the checkpoint: W9"),
    (_set("params", "W1", np.ones((10, 16), np.float32)), r"W1 is \(10, 16\) float32 in the "
                                                          r"checkpoint, \(784, 16\) float32"),
    (lambda s: s["params"].__setitem__("W1", s["params"]["W1"].astype(np.float64)), "float64"),
    (lambda s: s["params"]["W1"].__setitem__((0, 0), np.nan), "W1 hold NaN"),
    (_pop("meta"), "does not say which model it holds"),     # e.g. saved from Python
    (_pop("meta", "model"), "does not say which model it holds"),
    (_set("meta", "model", "rnn"), "'rnn' model"),
    # unhashable: these used to end in TypeError: unhashable type
    (_set("meta", "model", ["fc"]), r"\['fc'\] model"),
    (_set("meta", "model", {"kind": "fc"}), r"\{'kind': 'fc'\} model"),
    (_set("meta", "model", "cnn"), "bad model_kwargs for its cnn model"),
    (_pop("meta", "model_kwargs"), "no model_kwargs"),
    (_set("meta", "model_kwargs", "foo", 1), "unknown 'foo'"),
    (_pop("meta", "model_kwargs", "num_classes"), "no 'num_classes'"),
    (_set("meta", "model_kwargs", "hidden_dims", [10 ** 12]), "more than the"),
    (_set("meta", "model_kwargs", "hidden_dims", [60000, 60000]), "more than the"),
    (_set("meta", "model_kwargs", "hidden_dims", [-3, 8]), "hidden_dims=.*must be"),
    (_set("meta", "model_kwargs", "input_dim", "784"), "input_dim='784' must be"),
    (_set("meta", "model_kwargs", "normalization", "groupnorm"), "normalization='groupnorm'"),
    (_set("meta", "dataset", "imagenet"), "trained on 'imagenet'"),
    (_pop("meta", "normalization"), "normalization must hold"),
    (_set("meta", "normalization", "std", [0.0]), "std >= 1e-8"),
    (_set("meta", "normalization", "mean", [float("nan")]), "finite mean"),
    (_set("meta", "normalization", "mean", ["a"]), "finite mean"),
    (_set("meta", "normalization", "mean", [0.1, 0.2, 0.3]), "per input channel"),
    (_pop("params"), "holds no parameters"),
    (_pop("model_state"), "holds no model_state"),
    (_set("model_state", "loss", np.ones(1)), "sets 'loss'"),
    (_set("model_state", "params", {"W1": np.ones(1)}), "sets 'params'"),
    (_set("model_state", "num_layers", 1), "sets 'num_layers'"),
    (_set("model_state", "bn_params", [{"mode": "test"}]), "sets 'bn_params'"),
    (lambda s: s["model_state"]["bn_params"][0].__setitem__("running_mean",
                                                            np.zeros(1, np.float32)),
     r"running_mean of layer 1 is not a finite float32 vector of \(16,\)"),
    (lambda s: s["model_state"]["bn_params"][1].__setitem__("running_var", -np.ones(8, np.float32)),
     "running_var of layer 2"),
    # the keep probability is in (0, 1], as --dropout takes it
    (_set("meta", "model_kwargs", "dropout_keep_ratio", 0), "dropout_keep_ratio=0 must be"),
    (_set("meta", "model_kwargs", "dropout_keep_ratio", 1.5), "dropout_keep_ratio=1.5 must be"),
    (_set("meta", "model_kwargs", "seed", -1), "seed=-1 must be null or 0 .. 4294967295"),
    (_set("meta", "model_kwargs", "hidden_dims", [8] * 1001), "hidden_dims=.* must be a list of at most 1000"),
    # 1000 layers is a setting `train` writes: refused only because these parameters are not its
    (_set("meta", "model_kwargs", "hidden_dims", [8] * 1000), "parameters do not fit"),
    (_set("meta", "normalization", "mean", [2e6]), "finite mean"),
    (_set("meta", "normalization", "std", [2e6]), "std >= 1e-8"),
    # model_state must have the layout of the model's own state, down to the values in its dicts
    (_set("model_state", "bn_params", {"0": {"mode": "train"}}), "sets 'bn_params'"),
    (lambda s: s["model_state"]["bn_params"][0].__setitem__("mode", 1), "sets 'bn_params'"),
])
def test_evaluate_refuses_a_checkpoint_whose_contents_do_not_fit(bn_run, edit, match, tmp_path,
                                                                 capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _edited(bn_run / "model.npz", tmp_path / "edited.npz", edit)
    assert main(["evaluate", str(bad), "--num-test", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}") and "Traceback" not in err
    assert re.search(match, err), err


@pytest.mark.parametrize("edit", [
    lambda s: None,
    _set("meta", "model_kwargs", "seed", None),     # a model built from Python
    # the edges of what `train` stores: std is the channel's std + 1e-8, so 1e-8 for a constant one
    _set("meta", "normalization", "std", [1e-8]), _set("meta", "normalization", "std", [1e6]),
    _set("meta", "normalization", "mean", [-1e6]),
    # a unit that is constant on the training set (a dead ReLU) has a running variance of 0
    lambda s: s["model_state"]["bn_params"][0]["running_var"].__setitem__(slice(None), 0),
])
def test_evaluate_still_takes_an_untouched_copy(bn_run, edit, tmp_path, capsys):
    same = _edited(bn_run / "model.npz", tmp_path / "same.npz", edit)
    assert main(["evaluate", str(same), "--num-test", "50"]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("spare, status", [(0, 0), (-1, 2)])
def test_evaluate_loads_a_model_of_exactly_max_params(bn_run, spare, status, monkeypatch, capsys):
    from deep_learning_suite import trained_model
    meta = load_checkpoint(bn_run / "model.npz")["meta"]
    monkeypatch.setattr(trained_model, "MAX_PARAMS",
                        trained_model.num_params("fc", meta["model_kwargs"]) + spare)
    assert main(["evaluate", str(bn_run), "--num-test", "50"]) == status
    assert ("more than the" in capsys.readouterr().err) == (status == 2)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A finished cnn run, tiny, and the test accuracy its summary printed."""
    out = tmp_path_factory.mktemp("cnn")
    with contextlib.redirect_stdout(io.StringIO()) as text:
        assert main(CNN_ARGV + ["--out", str(out)]) == 0
    return out, summary_accuracy(text.getvalue())


CNN_ARGV = ["train", "--model", "cnn", "--num-filters", "2", "--filter-size", "3", "--hidden-dim", "8",
            "--epochs", "1"] + SMALL


def test_a_cnn_run_with_the_same_seed_has_the_same_weights(cnn_run, tmp_path, capsys):
    # the ThreeLayerConvNet takes no seed: its weights come from NumPy's global RNG, seeded by --seed
    np.random.rand(3)                           # wherever that RNG happens to be
    assert main(CNN_ARGV + ["--out", str(tmp_path)]) == 0
    a = load_checkpoint(cnn_run[0] / "model.npz")["params"]
    b = load_checkpoint(tmp_path / "model.npz")["params"]
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_evaluate_a_cnn_run_scores_what_train_scored(cnn_run, capsys):
    out, acc = cnn_run
    assert main(["evaluate", str(out), "--num-test", "300"]) == 0
    assert float(re.search(r"accuracy (\d\.\d+)", capsys.readouterr().out).group(1)) == \
        pytest.approx(acc, abs=1e-4)


@pytest.mark.parametrize("edit, match", [
    (_set("meta", "model_kwargs", "input_dim", [1, 28]), r"input_dim=\[1, 28\] must be \[C, H, W\]"),
    (_set("meta", "model_kwargs", "input_dim", [1, 28, 0]), r"input_dim=\[1, 28, 0\] must be"),
    (_set("meta", "model_kwargs", "num_filters", 0), "num_filters=0 must be a positive integer"),
    (_set("meta", "model_kwargs", "filter_size", 2), "filter_size=2 must be an odd positive integer"),
    (_set("meta", "model_kwargs", "filter_size", 4), "filter_size=4 must be an odd"),
    # an odd size is a setting `train` writes: refused only because the weights are 3x3
    (_set("meta", "model_kwargs", "filter_size", 5), r"W1 is \(2, 1, 3, 3\) float32 in the checkpoint"),
    (_set("meta", "model_kwargs", "input_dim", [1, 28, 10 ** 9]), "parameters, more than the"),
    (_set("meta", "normalization", {"mean": [0.5, 0.5], "std": [0.5, 0.5]}), r"per input channel \(1\)"),
])
def test_evaluate_refuses_a_cnn_checkpoint_whose_settings_do_not_fit(cnn_run, edit, match, tmp_path, capsys):
    bad = _edited(cnn_run[0] / "model.npz", tmp_path / "edited.npz", edit)
    assert main(["evaluate", str(bad), "--num-test", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}") and "Traceback" not in err
    assert re.search(match, err), err


def _fake_dataset(monkeypatch, shape, num_classes, labels=None):
    """Stand in for a dataset that is not here (cifar10 is 3-channel 32x32); returns the loads asked for."""
    from deep_learning_suite import cli
    X = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    y = np.arange(shape[0]) % num_classes if labels is None else np.asarray(labels)
    asked = []

    def load(name, data_dir=None, download=True):
        asked.append(name)
        return X, y, X, y, [f"class{i}" for i in range(num_classes)]
    monkeypatch.setattr(cli, "load_dataset", load)
    return asked


@pytest.mark.parametrize("run, shape, num_classes, match", [
    ("bn_run", (20, 32, 32, 3), 10, r"cifar10 images have 3 channel\(s\) but the model was trained on 1"),
    ("bn_run", (20, 32, 32), 10, "cifar10 images give inputs of 1024 but the model takes 784"),
    ("bn_run", (20, 28, 28), 5, "the model predicts 10 classes but cifar10 has 5"),
    ("cnn_run", (20, 32, 32), 10, r"give inputs of \(1, 32, 32\) but the model takes \(1, 28, 28\)"),
])
def test_evaluate_on_a_dataset_unlike_the_training_one_is_refused(run, shape, num_classes, match, request,
                                                                  monkeypatch, capsys):
    out = request.getfixturevalue(run)
    asked = _fake_dataset(monkeypatch, shape, num_classes)
    assert main(["evaluate", str(out if run == "bn_run" else out[0]), "--dataset", "cifar10"]) == 2
    assert asked == ["cifar10"]
    err = capsys.readouterr().err
    assert re.search(match, err) and "evaluate it on the dataset it was trained on" in err, err


def test_evaluate_lists_only_the_classes_its_test_images_have(bn_run, monkeypatch, capsys):
    asked = _fake_dataset(monkeypatch, (12, 28, 28), 10, labels=[3, 7] * 6)
    assert main(["evaluate", str(bn_run), "--num-test", "8"]) == 0
    assert asked == ["sample"]                      # the dataset it was trained on
    text = capsys.readouterr().out
    assert "(8 images)" in text
    rows = re.findall(r"^(class\d)\s+(\d\.\d{4})\s+(\d+)$", text, re.M)
    assert [(name, count) for name, _, count in rows] == [("class3", "4"), ("class7", "4")]


@pytest.mark.parametrize("kind, kwargs", [
    ("cnn", dict(input_dim=[3, 8, 6], num_filters=4, filter_size=3, hidden_dim=5, num_classes=7)),
    ("cnn", dict(input_dim=[2, 5, 9], num_filters=3, filter_size=5, hidden_dim=6, num_classes=4)),
])
def test_num_params_counts_a_cnn_s_parameters(kind, kwargs):
    from deep_learning_suite.cli import build_model
    from deep_learning_suite.trained_model import num_params
    model = build_model(kind, kwargs)
    assert num_params(kind, kwargs) == sum(v.size for v in model.params.values())


@pytest.mark.parametrize("hidden_dims", [[5], [6, 4], [3, 9, 2]])
def test_num_params_bounds_an_fc_net_by_at_most_the_output_layer_s_gamma_and_beta(hidden_dims):
    from deep_learning_suite.cli import build_model
    from deep_learning_suite.trained_model import num_params
    kwargs = dict(hidden_dims=hidden_dims, input_dim=11, num_classes=7, normalization="batchnorm")
    have = sum(v.size for v in build_model("fc", kwargs).params.values())
    assert have <= num_params("fc", kwargs) <= have + 2 * 7


@pytest.mark.parametrize("flag, value, match", [
    ("--lr", "nan", "finite number"), ("--lr", "inf", "finite number"),
    ("--lr-decay", "inf", "finite number"), ("--weight-scale", "1e999", "finite number"),
    ("--reg", "nan", "finite number"), ("--weight-decay", "inf", "finite number"),
    # a negative L2 penalty used to pass here and end in the model's traceback, exit 1
    ("--reg", "-0.5", "must be >= 0"), ("--reg", "-1", "must be >= 0"),
    ("--lr", "abc", "invalid float value"),
    ("--seed", "-1", "between 0 and 4294967295"), ("--seed", str(2 ** 32), "between 0 and"),
])
def test_non_finite_floats_and_bad_seeds_are_refused_at_parse_time(flag, value, match, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and re.search(match, err) and "Traceback" not in err


@pytest.mark.parametrize("flags", [["--weight-scale", "1e200"], ["--reg", "1e308"]])
def test_diverged_training_is_a_message_and_exit_1(flags, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--model", "fc", "--hidden-dims", "16", "--epochs", "1",
            "--out", str(tmp_path / "o")] + flags + SMALL
    with np.errstate(all="ignore"):
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "Lower the learning rate" in err


@pytest.mark.parametrize("out, match", [("a_file", "is a file, not a folder"),
                                        ("a_file/sub", "cannot create the folder")])
def test_out_that_cannot_be_a_folder_is_a_clear_error(out, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("keep me")
    assert main(["train", "--out", out, "--quiet"]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert (tmp_path / "a_file").read_text() == "keep me"


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stopped")
    assert main(["train", "--model", "fc", "--hidden-dims", "16", "--epochs", "1", "--lr", "2e-3",
                 "--out", str(out)] + SMALL) == 0
    return out / "checkpoint_epoch_1.npz"


@pytest.mark.parametrize("flags, conflicts", [
    (["--lr", "0.5", "--model", "cnn"], ["--model cnn but the checkpoint was trained with "
                                         "--model fc", "--lr 0.5 but the checkpoint was trained "
                                         "with --lr 0.002"]),
    (["--hidden-dims", "16,8"], ["--hidden-dims 16,8 but .* with --hidden-dims 16"]),
    (["--normalization", "batchnorm"], ["--normalization batchnorm but .* --normalization none"]),
    (["--seed", "3"], ["--seed 3 but .* --seed 0"]),
    (["--dataset", "mnist"], ["--dataset mnist but .* --dataset sample"]),
    (["--weight-decay", "0.1", "--update-rule", "adamw"],
     ["--update-rule adamw but .* --update-rule adam", "--weight-decay 0.1 but .* without "
                                                       "--weight-decay"]),
])
def test_resume_refuses_flags_that_contradict_the_checkpoint(stopped_run, flags, conflicts,
                                                              tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(stopped_run), "--out", str(tmp_path / "o"),
                 "--quiet"] + flags) == 2
    err = capsys.readouterr().err
    for c in conflicts:
        assert re.search(c, err), (c, err)
    assert "drop the flag" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [[], ["--lr", "2e-3", "--model", "fc", "--hidden-dims", "16"],
                                   ["--normalization", "none", "--seed", "0", "--epochs", "2"]])
def test_resume_takes_flags_that_agree_with_the_checkpoint(stopped_run, flags, tmp_path, capsys):
    assert main(["train", "--resume", str(stopped_run), "--out", str(tmp_path), "--quiet"]
                + flags) == 0
    epochs = 2 if "--epochs" in flags else 1
    assert f"{epochs} epochs" in capsys.readouterr().out


@pytest.mark.parametrize("edit, match", [
    (_set("meta", "args", [1]), "a list, not a table"),
    (_set("meta", "args", "model", "xyz"), "--model is 'xyz'"),
    (_set("meta", "args", "batch_size", "64"), "--batch-size is '64'"),
    (_set("meta", "args", "lr", float("nan")), "--lr is nan"),
    (_set("meta", "args", "hidden_dims", 16), "--hidden-dims is 16"),
    (_set("meta", "args", "reg", -0.5), "--reg is -0.5"),
    (_set("meta", "args", "num_test", 0), "--num-test is 0"),
    # each saved setting is held to the range its flag takes
    (_set("meta", "args", "lr", 0), "--lr is 0"), (_set("meta", "args", "lr_decay", -0.5), "--lr-decay is -0.5"),
    (_set("meta", "args", "update_rule", "nope"), "--update-rule is 'nope'"),
    (_set("meta", "args", "weight_decay", -1), "--weight-decay is -1"),
    (_set("meta", "args", "dropout", 0), "--dropout is 0"), (_set("meta", "args", "dropout", 1.5), "--dropout is 1.5"),
    (_set("meta", "args", "seed", -1), "--seed is -1"), (_set("meta", "args", "seed", True), "--seed is True"),
    (_set("meta", "args", "num_train", 0), "--num-train is 0"),
    (_pop("meta", "args"), "holds no CLI settings; resume it from Python"),   # a Solver's own checkpoint
    (_set("meta", "args", "surprise", 1), "unknown setting 'surprise'"),
    (_pop("meta", "args", "epochs"), "no --epochs"),
])
def test_resume_refuses_damaged_saved_settings(stopped_run, edit, match, tmp_path, capsys,
                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _edited(stopped_run, tmp_path / "edited.npz", edit)
    assert main(["train", "--resume", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}") and re.search(match, err), err


@pytest.mark.parametrize("epoch", ["1", None, True, 1.0, -5])
def test_resume_refuses_a_damaged_epoch_count(stopped_run, epoch, tmp_path, capsys):
    # It used to end in a TypeError traceback and exit 1 ("diverged"), or print "True epochs".
    bad = _edited(stopped_run, tmp_path / "edited.npz", _set("epoch", epoch))
    assert main(["train", "--resume", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: checkpoint {bad}: its epoch is {epoch!r}, not a count"), err


def test_cmd_train_called_from_python_checks_resume_flags_too(stopped_run, tmp_path, capsys):
    # not through main(), which records the flags typed: a flag off its default counts as given
    from deep_learning_suite.cli import CLIError, cmd_train
    args = build_parser().parse_args(["train", "--resume", str(stopped_run), "--lr", "0.5", "--out",
                                      str(tmp_path / "o"), "--quiet"])
    with pytest.raises(CLIError, match="--lr 0.5 but the checkpoint was trained with --lr 0.002"):
        cmd_train(args)
    args = build_parser().parse_args(["train", "--resume", str(stopped_run), "--out", str(tmp_path / "o"), "--quiet"])
    assert cmd_train(args) == 0


@pytest.mark.parametrize("edit", [
    _set("meta", "args", "reg", 0), _set("meta", "args", "seed", 2 ** 32 - 1),
    # from before a flag existed: the run had the flag's default
    _pop("meta", "args", "dropout"), _pop("meta", "args", "num_val"),
])
def test_resume_takes_saved_settings_train_could_have_written(stopped_run, edit, tmp_path, capsys):
    ok = _edited(stopped_run, tmp_path / "edge.npz", edit)
    assert main(["train", "--resume", str(ok), "--out", str(tmp_path / "o"), "--quiet"]) == 0


def test_a_bad_flag_gets_one_line_not_the_usage_block(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--lr", "nan"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --lr: must be a finite number" in err[0]
    assert "see python -m deep_learning_suite train --help" in err[0]


def test_resume_refuses_fewer_epochs_than_already_trained(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fc", "--hidden-dims", "16", "--epochs", "2", "--out", str(out)]
                + SMALL) == 0
    before = (out / "model.npz").read_bytes()
    assert main(["train", "--resume", str(out / "checkpoint_epoch_2.npz"), "--epochs", "1",
                 "--quiet"]) == 2
    assert "already trained 2 epochs; --epochs is the total" in capsys.readouterr().err
    assert (out / "model.npz").read_bytes() == before          # nothing rewritten


def test_evaluate_accepts_every_model_train_writes(tmp_path, capsys):
    # 101 hidden layers, each small: the per-list and per-size caps once refused these.
    out = tmp_path / "deep"
    assert main(["train", "--model", "fc", "--hidden-dims", ",".join(["8"] * 101), "--epochs", "1",
                 "--out", str(out)] + SMALL) == 0
    assert main(["evaluate", str(out), "--num-test", "50"]) == 0


@pytest.mark.parametrize("flag, value, match", [
    ("--hidden-dims", "16,0", "hidden sizes must be positive"),
    ("--hidden-dims", "-3", "hidden sizes must be positive"), ("--dropout", "0", "KEEPING"),
])
def test_values_just_outside_a_flag_s_range_are_refused(flag, value, match, capsys):
    # parse only: a check that let them through would not then start a long default run
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and match in err


@pytest.mark.parametrize("flag, value, parsed", [
    ("--hidden-dims", "1", [1]), ("--hidden-dims", ",".join(["4"] * 1000), [4] * 1000),
    ("--dropout", "1", 1.0), ("--reg", "0", 0.0), ("--seed", "0", 0), ("--seed", "4294967295", 2 ** 32 - 1),
    ("--lr", "1e-9", 1e-9), ("--epochs", "1", 1),
])
def test_the_edge_values_of_a_flag_s_range_are_taken(flag, value, parsed):
    args = build_parser().parse_args(["train", flag, value])
    assert getattr(args, flag[2:].replace("-", "_")) == parsed


def test_train_refuses_more_hidden_layers_than_evaluate_loads(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "fc", "--hidden-dims", ",".join(["4"] * 1001)] + SMALL)
    assert exit_.value.code == 2
    assert "at most 1000 hidden layers" in capsys.readouterr().err


def test_train_refuses_more_parameters_than_evaluate_loads(tmp_path, capsys):
    assert main(["train", "--model", "fc", "--hidden-dims", "200000,200000", "--out",
                 str(tmp_path / "x")] + SMALL) == 2
    assert "the command line trains and evaluates at most 100,000,000" in capsys.readouterr().err


@pytest.mark.parametrize("spare, status", [(0, 0), (-1, 2)])
def test_train_takes_a_model_of_exactly_max_params(spare, status, tmp_path, monkeypatch, capsys):
    from deep_learning_suite import trained_model
    size = trained_model.num_params("fc", dict(input_dim=28 * 28, hidden_dims=[8], num_classes=10))
    monkeypatch.setattr(trained_model, "MAX_PARAMS", size + spare)
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1", "--out", str(tmp_path)]
                + SMALL) == status
    assert ("the command line trains and evaluates at most" in capsys.readouterr().err) == (status == 2)


def test_resume_from_model_npz_is_refused_naming_the_latest_checkpoint(stopped_run, tmp_path,
                                                                       capsys):
    # model.npz holds the best parameters but the last iteration's counters and optimizer
    # state: resuming from it used to continue a run that never was, without a word.
    model = stopped_run.parent / "model.npz"
    assert main(["train", "--resume", str(model), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model} holds the best-validation weights, not the last "
                          f"iteration's") and f"resume from {stopped_run}" in err
    assert not (tmp_path / "o").exists()
    assert main(["evaluate", str(model), "--num-test", "50"]) == 0      # what it is for


def test_resume_from_a_run_folder_names_the_checkpoint_to_pass(stopped_run, tmp_path, capsys):
    folder = stopped_run.parent
    assert main(["train", "--resume", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {folder} is a folder" in err and f"--resume {stopped_run}" in err
    assert main(["train", "--resume", str(tmp_path), "--quiet"]) == 2
    assert "is a folder; it holds no checkpoint_epoch_N.npz" in capsys.readouterr().err


@pytest.mark.parametrize("flags, shown", [([], 300), (["--num-test", "50"], 50)])
def test_resume_scores_the_test_images_the_run_was_trained_to_score(stopped_run, flags, shown,
                                                                    tmp_path, capsys):
    # --num-test used to be dropped on resume: the summary then scored all 10,000 test images
    assert main(["train", "--resume", str(stopped_run), "--out", str(tmp_path), "--quiet"]
                + flags) == 0
    assert re.search(rf"test accuracy \d\.\d+ \(\d+/{shown}\)", capsys.readouterr().out)


def test_an_out_folder_that_cannot_be_written_is_refused_before_training(tmp_path, capsys,
                                                                         monkeypatch):
    # The tests run as root, which writes anywhere: the failing write is faked.
    import tempfile

    from deep_learning_suite import trainer

    out = tmp_path / "o"
    writable = tempfile.TemporaryFile

    def refuse(*args, dir=None, **kwargs):      # only --out is read-only: it is --out that is probed
        if dir is not None and str(dir) == str(out):
            raise PermissionError(13, "Permission denied")
        return writable(*args, dir=dir, **kwargs)

    def no_training(self):
        raise AssertionError("trained into a folder it cannot write")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(trainer.Solver, "train", no_training)
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1", "--out",
                 str(out)] + SMALL) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out {out}: cannot write there (Permission denied)\n"


@pytest.mark.parametrize("blocked", ["checkpoint_epoch_1.npz", "model.npz", "history.csv",
                                     "loss.png", "disk full"])
def test_a_failed_write_during_a_run_is_one_line_and_exit_2(blocked, tmp_path, capsys,
                                                            monkeypatch):
    # It used to be a traceback and exit 1, the code that means the training diverged.
    import errno

    from deep_learning_suite import checkpoint

    out = tmp_path / "o"
    if blocked == "disk full":
        def full(path, write):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(checkpoint, "atomic_write", full)
        reason = "No space left on device"
    else:                           # a folder where the file goes: even root cannot write it
        (out / blocked).mkdir(parents=True)
        reason = "Is a directory"
    assert main(["train", "--model", "fc", "--hidden-dims", "8", "--epochs", "1", "--out",
                 str(out)] + SMALL) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: writing the run's outputs in {out} failed") and reason in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_resuming_a_finished_run_says_there_is_nothing_to_train(stopped_run, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the Solver's own advice is for Python users
        assert main(["train", "--resume", str(stopped_run), "--out", str(tmp_path),
                     "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "already trained all 1 epochs" in err and "--epochs" in err


def test_resuming_a_finished_run_writes_its_best_parameters(stopped_run, tmp_path, capsys):
    # as train() would end: with the best-validation parameters in model.npz, not the last
    # iteration's (here the best ones are made to differ from the last)
    def halve_best(state):
        state["best_params"] = {k: v * 0.5 for k, v in state["best_params"].items()}
    ck = _edited(stopped_run, tmp_path / "ck.npz", halve_best)
    assert main(["train", "--resume", str(ck), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    best = load_checkpoint(ck)["best_params"]
    written = load_checkpoint(tmp_path / "o" / "model.npz")["params"]
    assert set(written) == set(best) and all(np.array_equal(written[k], best[k]) for k in best)
