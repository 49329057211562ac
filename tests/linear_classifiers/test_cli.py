import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from linear_classifiers.__main__ import (
    add_bias_column,
    build_parser,
    featurize,
    format_table,
    main,
    preprocess,
    run,
)

from ..deep_learning_suite.test_data import write_cifar

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--dataset", "sample", "--num-train", "600", "--num-test", "200", "--num-iters", "60",
         "--cv-size", "300", "--num-folds", "3"]


def _table_rows(text):
    """The table's data lines, keyed by model name: {model: cells}."""
    lines = text.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model"))
    return {line.split()[0]: line.split() for line in lines[start + 2:]}


def test_python_dash_m_runs_on_the_sample():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "linear_classifiers", *SMALL, "--k", "1", "3"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "600 training and 200 test samples, D = 784, 10 classes" in proc.stdout
    assert "cross-validation on 300 samples" in proc.stdout
    rows = _table_rows(proc.stdout)
    assert sorted(rows) == ["LinearSVM", "Softmax", "kNN"]
    for cells in rows.values():
        test_acc = float(cells[-3])
        assert 0.4 < test_acc <= 1.0, proc.stdout


def test_run_returns_sensible_results(capsys):
    rows = run(build_parser().parse_args(SMALL + ["--k", "5"]))
    by_model = {r["model"]: r for r in rows}
    assert by_model["kNN"]["setting"] == "k=5"
    assert by_model["kNN"]["train_acc"] is None
    for name in ("LinearSVM", "Softmax"):
        assert by_model[name]["test_acc"] > 0.5
        assert by_model[name]["train_acc"] >= by_model[name]["test_acc"] - 0.1
    assert "cross-validation" not in capsys.readouterr().out  # one k: nothing to choose


def test_skip_knn_and_table_format(capsys):
    assert main(SMALL + ["--skip-knn"]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert sorted(rows) == ["LinearSVM", "Softmax"]
    table = format_table([dict(model="m", setting="s", train_acc=None, test_acc=0.5, train_s=1.0, predict_s=2.0)])
    assert table.splitlines()[2].split() == ["m", "s", "-", "0.500", "1.00", "2.00"]


def test_preprocess_flattens_scales_and_centres_on_the_training_mean(rng):
    X_train = rng.integers(0, 256, size=(20, 4, 4), dtype=np.uint8)
    X_test = rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    A, B = preprocess(X_train, X_test)
    assert A.shape == (20, 16) and B.shape == (5, 16)
    assert np.allclose(A.mean(axis=0), 0)
    mean = X_train.reshape(20, -1).mean(axis=0) / 255
    assert np.allclose(B, X_test.reshape(5, -1) / 255 - mean)
    Ab = add_bias_column(A)
    assert Ab.shape == (20, 17) and np.all(Ab[:, -1] == 1) and np.array_equal(Ab[:, :-1], A)


@pytest.mark.parametrize("argv", [["--dataset", "nope"], ["--k", "0"], ["--lr", "-1"], ["--num-train", "x"]])
def test_bad_options_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_k_larger_than_the_training_set_is_reported(capsys):
    assert main(SMALL + ["--num-train", "50", "--k", "80", "--skip-knn"]) == 0
    assert main(SMALL + ["--num-train", "50", "--k", "80"]) == 2
    assert "exceeds" in capsys.readouterr().err


def test_a_diverging_learning_rate_is_reported(capsys):
    with np.errstate(all="ignore"):
        assert main(SMALL + ["--skip-knn", "--lr", "1e200"]) == 2
    err = capsys.readouterr().err
    assert "loss became" in err and "Lower the learning rate" in err


def test_hog_features_train_every_model(capsys):
    assert main(SMALL + ["--k", "3", "--features", "hog", "--hog-cell-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "600 training and 200 test samples, D = 441 (hog features), 10 classes" in out
    rows = _table_rows(out)
    assert sorted(rows) == ["LinearSVM", "Softmax", "kNN"]
    assert all(float(cells[-3]) > 0.5 for cells in rows.values()), out


def test_hog_and_color_features_on_cifar10_files(tmp_path, capsys):
    write_cifar(tmp_path / "cifar-10-batches-py", n=30)
    argv = ["--dataset", "cifar10", "--data-dir", str(tmp_path / "cifar-10-batches-py"), "--num-iters", "20",
            "--k", "1", "--features", "hog+color"]
    assert main(argv) == 0
    assert "150 training and 30 test samples, D = 154 (hog+color features)" in capsys.readouterr().out


def test_color_features_of_grey_images_are_refused(capsys):
    assert main(SMALL + ["--features", "hog+color"]) == 2
    assert "needs RGB images (N, H, W, 3)" in capsys.readouterr().err


def test_featurize_standardises_with_the_training_statistics(rng):
    X_train = rng.uniform(0, 255, size=(40, 16, 16, 3))
    X_test = rng.uniform(0, 255, size=(10, 16, 16, 3))
    F_train, F_test = featurize(X_train, X_test, "hog+color")
    assert F_train.shape == (40, 2 * 2 * 9 + 10) and F_test.shape == (10, 46)
    varying = F_train.std(axis=0) > 0
    assert np.allclose(F_train.mean(axis=0), 0, atol=1e-10)
    assert np.allclose(F_train.std(axis=0)[varying], 1)
    assert np.all(np.isfinite(F_test))


@pytest.mark.parametrize("seed, words", [("-1", "must be >= 0, got -1"), ("1.5", "must be a whole number >= 0")])
def test_a_bad_seed_names_the_flag(seed, words, capsys):
    # np.random.default_rng(-1) used to say only "expected non-negative integer"
    with pytest.raises(SystemExit) as exc:
        main(["--seed", seed])
    assert exc.value.code == 2
    assert f"argument --seed: {words}" in capsys.readouterr().err
