"""Draw the Fashion-MNIST sample shipped in ``deep_learning_suite/data/``.

A stratified subset: ``--train-per-class`` images of each class from the official training
set and ``--test-per-class`` from the official test set, chosen without replacement by a
NumPy generator with a fixed seed, kept in their original order. Re-running the script with
the same arguments on the same source files writes the same arrays.

    python tools/make_sample.py            # reads /usr/share/datasets/fashion-mnist
"""

import argparse
from pathlib import Path

import numpy as np

from deep_learning_suite.data import SAMPLE_PATH, load_fashion_mnist


def stratified(y, per_class, rng):
    idx = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(idx))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-per-class", type=int, default=900)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=231)
    ap.add_argument("--out", default=str(SAMPLE_PATH))
    args = ap.parse_args(argv)

    Xtr, ytr, Xte, yte = load_fashion_mnist(args.data_dir, download=False)
    rng = np.random.default_rng(args.seed)
    tr = stratified(ytr, args.train_per_class, rng)
    te = stratified(yte, args.test_per_class, rng)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, X_train=Xtr[tr], y_train=ytr[tr].astype(np.uint8),
                        X_test=Xte[te], y_test=yte[te].astype(np.uint8),
                        train_index=tr.astype(np.int32), test_index=te.astype(np.int32))
    print(f"wrote {args.out}: {tr.size} train, {te.size} test, "
          f"{Path(args.out).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
