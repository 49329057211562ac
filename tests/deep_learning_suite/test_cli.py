import csv
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from deep_learning_suite.checkpoint import load_checkpoint, save_checkpoint
from deep_learning_suite.cli import main

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


@pytest.mark.parametrize("dataset, env", [("cifar10", "CIFAR10_DIR"), ("mnist", "MNIST_DIR"),
                                          ("fashion-mnist", "FASHION_MNIST_DIR")])
def test_missing_data_is_a_clear_error(dataset, env, tmp_path, capsys):
    rc = main(["train", "--dataset", dataset, "--data-dir", str(tmp_path / "none"),
               "--no-download", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
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
     "running_mean of layer 1"),
    (lambda s: s["model_state"]["bn_params"][1].__setitem__("running_var", -np.ones(8, np.float32)),
     "running_var of layer 2"),
])
def test_evaluate_refuses_a_checkpoint_whose_contents_do_not_fit(bn_run, edit, match, tmp_path,
                                                                 capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = _edited(bn_run / "model.npz", tmp_path / "edited.npz", edit)
    assert main(["evaluate", str(bad), "--num-test", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}") and "Traceback" not in err
    assert re.search(match, err), err


def test_evaluate_still_takes_an_untouched_copy(bn_run, tmp_path, capsys):
    same = _edited(bn_run / "model.npz", tmp_path / "same.npz", lambda s: None)
    assert main(["evaluate", str(same), "--num-test", "50"]) == 0
    assert "accuracy" in capsys.readouterr().out


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


def test_train_refuses_more_hidden_layers_than_evaluate_loads(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "fc", "--hidden-dims", ",".join(["4"] * 1001)] + SMALL)
    assert exit_.value.code == 2
    assert "at most 1000 hidden layers" in capsys.readouterr().err


def test_train_refuses_more_parameters_than_evaluate_loads(tmp_path, capsys):
    assert main(["train", "--model", "fc", "--hidden-dims", "200000,200000", "--out",
                 str(tmp_path / "x")] + SMALL) == 2
    assert "the command line trains and evaluates at most 100,000,000" in capsys.readouterr().err


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

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_training(self):
        raise AssertionError("trained into a folder it cannot write")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(trainer.Solver, "train", no_training)
    out = tmp_path / "o"
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
