"""``cs231n.data_utils`` behaves as the course's file: float64 CIFAR-10 images, and the
course's ``load_tiny_imagenet`` and ``load_models`` (which names the other modules give is
checked with the other notebooks', in test_notebook_imports.py)."""

import pickle

import numpy as np
import pytest

from deep_learning_suite import data, imagenet, saved_params

from ..deep_learning_suite.test_data import N_PER_BATCH, write_cifar

COURSE_NAMES = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data", "load_tiny_imagenet",
                "load_models", "load_imagenet_val"]


def test_star_import_gives_the_courses_names_only():
    namespace = {}
    exec("from cs231n.data_utils import *", namespace)
    assert set(COURSE_NAMES) <= set(namespace)
    assert not {"np", "data", "Path"} & set(namespace)


def test_the_new_loaders_are_the_toolkits_own():
    from cs231n import data_utils

    assert data_utils.load_tiny_imagenet is imagenet.load_tiny_imagenet
    assert data_utils.load_models is saved_params.load_models
    assert data_utils.load_CIFAR10 is data.load_CIFAR10          # float64 by default already


def test_load_cifar_batch_gives_float64_images_as_the_course_does(tmp_path):
    from cs231n.data_utils import load_CIFAR_batch

    root = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(root)
    X, y = load_CIFAR_batch(root / "data_batch_1")
    raw, labels = data.load_CIFAR_batch(root / "data_batch_1")
    assert X.dtype == np.float64 and X.shape == (N_PER_BATCH, 32, 32, 3)
    assert y.dtype == np.int64 and y.tolist() == batches["data_batch_1"][b"labels"]
    np.testing.assert_array_equal(X, raw)
    # On uint8 pixels this difference wrapped around (the kNN notebook's distances were wrong).
    assert np.sum((X[0] - X[1]) ** 2) == np.sum((raw[0].astype(float) - raw[1]) ** 2)


@pytest.mark.parametrize("load", ["load_CIFAR10", "load_CIFAR_batch"])
def test_the_knn_notebooks_preprocessing_cell_runs(tmp_path, load):
    # "X_train -= mean_image" in place: uint8 images make NumPy refuse the float mean.
    from cs231n import data_utils

    root = tmp_path / "cifar-10-batches-py"
    write_cifar(root)
    X_train = (data_utils.load_CIFAR10(root)[0] if load == "load_CIFAR10"
               else data_utils.load_CIFAR_batch(root / "data_batch_1")[0])
    X_train = np.reshape(X_train, (X_train.shape[0], -1))
    mean_image = np.mean(X_train, axis=0)
    X_train -= mean_image
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-9)


def test_load_tiny_imagenet_and_load_models_through_the_course_import(tmp_path):
    from cs231n.data_utils import load_models, load_tiny_imagenet

    from ..deep_learning_suite.test_imagenet import write_tiny_imagenet

    raw = write_tiny_imagenet(tmp_path / "tiny-imagenet-100-A", np.random.default_rng(0))
    d = load_tiny_imagenet(str(tmp_path / "tiny-imagenet-100-A"))
    assert d["X_train"].shape == raw["X_train"].shape and d["X_train"].dtype == np.float32
    (tmp_path / "models").mkdir()
    with open(tmp_path / "models" / "model1.pkl", "wb") as f:
        pickle.dump({"model": {"W1": np.eye(3)}}, f, protocol=2)
    (tmp_path / "models" / "README.txt").write_text("pretrained models\n")
    models = load_models(str(tmp_path / "models"))
    assert list(models) == ["model1.pkl"]
    np.testing.assert_array_equal(models["model1.pkl"]["W1"], np.eye(3))
