"""Train kNN, a linear SVM and a softmax classifier on one dataset and print a table.

Usage::

    python -m linear_classifiers                       # the shipped Fashion-MNIST sample
    python -m linear_classifiers --dataset cifar10 --num-train 5000 --num-test 500
    python -m linear_classifiers --k 5 --num-iters 500 --lr 0.05 --reg 1e-3
    python -m linear_classifiers --features hog --hog-cell-size 4     # HOG instead of pixels
    python -m linear_classifiers --dataset cifar10 --features hog+color

Preprocessing, as in the course: images are flattened to rows, scaled to [0, 1] (so one
learning rate suits every dataset), and the training mean image is subtracted; the linear
models get an extra constant column of ones for the bias. With several ``--k`` values, k
is chosen by cross-validation on (at most ``--cv-size``) training samples. With
``--features``, every model sees HOG (and, for RGB images, hue-histogram) features instead,
each standardised with the training set's mean and deviation, as in the features notebook.
"""

import argparse
import sys
import time
import warnings

import numpy as np

from .features import color_histogram_hsv, extract_features, hog_feature
from .k_nearest_neighbor import KNearestNeighbor, best_k, cross_validate_k
from .linear_classifier import LinearSVM, Softmax, TrainingDivergedWarning

DATASETS = ("sample", "fashion-mnist", "mnist", "cifar10")
FEATURES = ("pixels", "hog", "hog+color")


def load_dataset(name, data_dir=None):
    """Return ``X_train, y_train, X_test, y_test`` with uint8 images and int64 labels."""
    from deep_learning_suite import data

    if name == "sample":
        d = data.load_sample()
        return d["X_train"], d["y_train"], d["X_test"], d["y_test"]
    if name == "fashion-mnist":
        return data.load_fashion_mnist(data_dir)
    if name == "mnist":
        return data.load_mnist(data_dir)
    if name == "cifar10":
        return data.load_CIFAR10(data.find_cifar10_dir(data_dir), dtype=np.uint8)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def preprocess(X_train, X_test, dtype=np.float64):
    """Flatten, scale to [0, 1] and subtract the training mean.

    Returns
    -------
    X_train, X_test : ndarray, (N, D) with D the number of pixel values
    """
    X_train = X_train.reshape(X_train.shape[0], -1).astype(dtype) / 255
    X_test = X_test.reshape(X_test.shape[0], -1).astype(dtype) / 255
    mean_image = X_train.mean(axis=0)
    return X_train - mean_image, X_test - mean_image


def featurize(X_train, X_test, kind, cell_size=8):
    """HOG (``kind='hog'``) or HOG and a 10-bin hue histogram (``'hog+color'``) of every image,
    standardised per feature with the training set's mean and standard deviation.

    Returns
    -------
    X_train, X_test : ndarray, (N, F) float64
    """
    fns = [lambda im: hog_feature(im, cell_size=cell_size)]
    if kind == "hog+color":
        if X_train.ndim != 4 or X_train.shape[-1] != 3:
            raise ValueError(f"--features hog+color needs RGB images (N, H, W, 3), and this dataset's are "
                             f"{X_train.shape[1:]}: grey images have no hue; use --features hog")
        fns.append(lambda im: color_histogram_hsv(im, nbin=10))
    F_train, F_test = extract_features(X_train, fns), extract_features(X_test, fns)
    mean, std = F_train.mean(axis=0), F_train.std(axis=0)
    std[std == 0] = 1.0   # a feature that never varies (e.g. a border cell) stays 0
    return (F_train - mean) / std, (F_test - mean) / std


def add_bias_column(X):
    """Append a column of ones: ``(N, D) -> (N, D + 1)``, so ``W``'s last row is the bias."""
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


def _seed(text):
    """A seed for ``np.random.default_rng``: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m linear_classifiers",
        description="Train kNN, a linear SVM and a softmax classifier and print their accuracies.",
    )
    p.add_argument("--dataset", choices=DATASETS, default="sample",
                   help="sample: the Fashion-MNIST subset shipped in the package (default)")
    p.add_argument("--data-dir", default=None,
                   help="folder of the dataset (for cifar10, the cifar-10-batches-py folder); "
                        "default: environment variable, then cache, then download")
    p.add_argument("--num-train", type=_positive(int), default=10000,
                   help="training samples, drawn at random when the dataset has more (default: 10000, "
                        "i.e. all 9,000 of the sample)")
    p.add_argument("--num-test", type=_positive(int), default=2000,
                   help="test samples, drawn the same way (default: 2000)")
    p.add_argument("--k", type=_positive(int), nargs="+", default=[1, 3, 5, 10],
                   help="kNN neighbours; several values are compared by cross-validation (default: 1 3 5 10)")
    p.add_argument("--num-folds", type=_positive(int), default=5, help="cross-validation folds (default: 5)")
    p.add_argument("--cv-size", type=_positive(int), default=2000,
                   help="training samples used for cross-validation (default: 2000)")
    p.add_argument("--num-iters", type=_positive(int), default=1500, help="SGD steps (default: 1500)")
    p.add_argument("--batch-size", type=_positive(int), default=200, help="SGD minibatch (default: 200)")
    p.add_argument("--lr", type=_non_negative_float, default=0.05, help="SGD learning rate (default: 0.05)")
    p.add_argument("--reg", type=_non_negative_float, default=1e-3,
                   help="penalty reg * sum(W**2) (default: 1e-3)")
    p.add_argument("--features", choices=FEATURES, default="pixels",
                   help="what the models see: pixels (default), hog, or hog+color (RGB images only)")
    p.add_argument("--hog-cell-size", type=_positive(int), default=8,
                   help="HOG cell side in pixels (default 8, the course's for 32x32; 4 suits 28x28)")
    p.add_argument("--seed", type=_seed, default=0, help="seeds subsampling and SGD (default: 0)")
    p.add_argument("--skip-knn", action="store_true", help="train only the linear models")
    return p


def _subsample(X, y, num, rng):
    if num >= X.shape[0]:
        return X, y
    idx = np.sort(rng.choice(X.shape[0], size=num, replace=False))
    return X[idx], y[idx]


def _accuracy(y_pred, y):
    return float(np.mean(y_pred == y))


def run(args):
    """Train every model; return a list of result rows (dicts)."""
    rng = np.random.default_rng(args.seed)
    X_train, y_train, X_test, y_test = load_dataset(args.dataset, args.data_dir)
    X_train, y_train = _subsample(X_train, y_train, args.num_train, rng)
    X_test, y_test = _subsample(X_test, y_test, args.num_test, rng)
    if args.features == "pixels":
        X_train, X_test = preprocess(X_train, X_test)
    else:
        start = time.perf_counter()
        X_train, X_test = featurize(X_train, X_test, args.features, args.hog_cell_size)
        print(f"{args.features} features: {time.perf_counter() - start:.1f} s")
    print(f"{args.dataset}: {X_train.shape[0]} training and {X_test.shape[0]} test samples, "
          f"D = {X_train.shape[1]}{'' if args.features == 'pixels' else f' ({args.features} features)'}, "
          f"{int(y_train.max()) + 1} classes")

    rows = []
    if not args.skip_knn:
        ks = sorted(set(args.k))
        k = ks[0]
        setting = f"k={k}"
        if len(ks) > 1:
            num_cv = min(args.cv_size, X_train.shape[0])
            start = time.perf_counter()
            folds = cross_validate_k(X_train[:num_cv], y_train[:num_cv], ks, num_folds=args.num_folds)
            k = best_k(folds)
            cv_time = time.perf_counter() - start
            means = ", ".join(f"k={kk}: {np.mean(v):.3f}" for kk, v in folds.items())
            print(f"kNN {args.num_folds}-fold cross-validation on {num_cv} samples ({cv_time:.1f} s): "
                  f"{means} -> k={k}")
            setting = f"k={k} (CV)"
        knn = KNearestNeighbor()
        start = time.perf_counter()
        knn.train(X_train, y_train)
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        y_pred = knn.predict(X_test, k=k)
        predict_time = time.perf_counter() - start
        # kNN's training accuracy would be ~1 by construction; leave it out rather than mislead.
        rows.append(dict(model="kNN", setting=setting, train_acc=None,
                         test_acc=_accuracy(y_pred, y_test), train_s=train_time, predict_s=predict_time))

    X_train_b, X_test_b = add_bias_column(X_train), add_bias_column(X_test)
    for cls in (LinearSVM, Softmax):
        model = cls()
        start = time.perf_counter()
        history = model.train(X_train_b, y_train, learning_rate=args.lr, reg=args.reg,
                              num_iters=args.num_iters, batch_size=args.batch_size, seed=args.seed)
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        test_pred = model.predict(X_test_b)
        predict_time = time.perf_counter() - start
        rows.append(dict(model=cls.__name__, setting=f"lr={args.lr:g} reg={args.reg:g}",
                         train_acc=_accuracy(model.predict(X_train_b), y_train),
                         test_acc=_accuracy(test_pred, y_test), train_s=train_time,
                         predict_s=predict_time, final_loss=history[-1]))
    return rows


def format_table(rows):
    """Render result rows as a plain-text table."""
    header = ("model", "setting", "train acc", "test acc", "train s", "predict s")
    lines = [[r["model"], r["setting"],
              "-" if r["train_acc"] is None else f"{r['train_acc']:.3f}",
              f"{r['test_acc']:.3f}", f"{r['train_s']:.2f}", f"{r['predict_s']:.2f}"] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells):
        # Text columns left-aligned, numbers right-aligned.
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    return "\n".join(out)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # one fixed setting, not a sweep: a diverged model is no result to print
            warnings.simplefilter("error", TrainingDivergedWarning)
            rows = run(args)
    except (FileNotFoundError, ValueError, TrainingDivergedWarning) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
