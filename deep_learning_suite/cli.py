"""Command line: ``python -m deep_learning_suite train | evaluate | gradcheck``.

    python -m deep_learning_suite train --model cnn --dataset sample --out runs/quickstart
    python -m deep_learning_suite evaluate runs/quickstart/model.npz   # or: runs/quickstart
    python -m deep_learning_suite gradcheck

``train`` writes into ``--out``: ``checkpoint_epoch_<e>.npz`` after every epoch (the newest two
are kept), ``model.npz`` (the best parameters), ``history.csv``, ``loss.png``,
``accuracy.png``, ``filters.png`` and ``confusion.png``, then prints a summary line with the
test accuracy and the wall time.
Images are scaled to [0, 1] and standardised with the per-channel mean and standard deviation
of the training split; those numbers are stored in the checkpoint so ``evaluate`` applies the
same preprocessing. The validation split is drawn from the training set, never the test set.

``train --resume <checkpoint>`` continues a run with the settings it was trained with; a flag
that contradicts them is refused (``--epochs``, to extend the run, ``--num-test`` and the
output flags are free). Resume from a ``checkpoint_epoch_<e>.npz``: a run folder or its
``model.npz`` (the best parameters, not the last iteration's) is refused with the name of the
latest one. ``evaluate`` checks what a checkpoint says about its model (kind, sizes, normalisation,
parameter names, shapes and dtypes; see ``trained_model``) before it runs it.

Exit codes: 0 success; 1 training diverged (the loss became NaN or infinite) or a gradient
check failed; 2 a problem the user can fix (bad flag, missing data, unusable checkpoint or
output folder), printed without a traceback.
"""

import argparse
import contextlib
import csv
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .trainer import TrainingDivergedError, check_resumable, latest_checkpoint, update_rule_names

DATASETS = ("sample", "fashion-mnist", "mnist", "cifar10")
MAX_LAYERS = 1000       # hidden layers of an fc model (trained_model checks the same)
# Defaults per model, chosen so that `train --model cnn --dataset sample` reaches >= 85 % test
# accuracy in well under a minute on two quiet CPU cores.
DEFAULTS = {
    "cnn": dict(epochs=8, batch_size=64, update_rule="adam", lr=2e-3, lr_decay=0.75, reg=1e-3,
                weight_scale=2e-2),
    "fc": dict(epochs=10, batch_size=100, update_rule="adam", lr=1e-3, lr_decay=0.9, reg=1e-4,
               weight_scale=5e-2),
}


class CLIError(Exception):
    """A problem the user can fix (missing data, incompatible flags); printed without a traceback."""


# ----------------------------------------------------------------------------- data

def load_dataset(name, data_dir=None, download=True):
    """Raw images as uint8 (N, H, W) or (N, H, W, 3), int64 labels, and the class names."""
    from . import data

    if name == "sample":
        s = data.load_sample()
        return s["X_train"], s["y_train"], s["X_test"], s["y_test"], data.FASHION_MNIST_CLASSES
    if name == "fashion-mnist":
        return (*data.load_fashion_mnist(data_dir, download), data.FASHION_MNIST_CLASSES)
    if name == "mnist":
        return (*data.load_mnist(data_dir, download), data.MNIST_CLASSES)
    root = data.find_cifar10_dir(data_dir, download=download)
    return (*data.load_CIFAR10(root, dtype=np.uint8), data.CIFAR10_CLASSES)


def to_nchw(X):
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    X = X[:, None] if X.ndim == 3 else X.transpose(0, 3, 1, 2)
    return X.astype(np.float32) / np.float32(255)


def fit_normalization(X):
    """Per-channel mean and standard deviation of float images X (N, C, H, W), as JSON lists."""
    return {"scale": 1 / 255, "mean": X.mean(axis=(0, 2, 3), dtype=np.float64).tolist(),
            "std": (X.std(axis=(0, 2, 3), dtype=np.float64) + 1e-8).tolist()}


def normalize(X, norm):
    mean = np.asarray(norm["mean"], np.float32)[None, :, None, None]
    std = np.asarray(norm["std"], np.float32)[None, :, None, None]
    return (X - mean) / std


def split(args, X, y):
    """Seeded split of the training set into train and validation (the test set is never used)."""
    n = X.shape[0]
    if not 0 < args.num_val < n:
        raise CLIError(f"--num-val must be between 1 and {n - 1} (the training set has {n} images)")
    perm = np.random.default_rng(args.seed).permutation(n)
    val, train = perm[:args.num_val], perm[args.num_val:]
    if args.num_train is not None:
        train = train[:args.num_train]
    return X[train], y[train], X[val], y[val]


# ----------------------------------------------------------------------------- models

def model_spec(args, input_dim):
    """JSON-able (kind, kwargs) that ``build_model`` turns into a model; stored in checkpoints."""
    if args.model == "cnn":
        return "cnn", dict(input_dim=list(input_dim), num_filters=args.num_filters,
                           filter_size=args.filter_size, hidden_dim=args.hidden_dim,
                           num_classes=10, weight_scale=args.weight_scale, reg=args.reg)
    return "fc", dict(hidden_dims=args.hidden_dims, input_dim=int(np.prod(input_dim)),
                      num_classes=10, dropout_keep_ratio=args.dropout,
                      normalization=None if args.normalization == "none" else args.normalization,
                      reg=args.reg, weight_scale=args.weight_scale, seed=args.seed)


def build_model(kind, kwargs):
    try:
        if kind == "cnn":
            from .cnn_model import ThreeLayerConvNet
            return ThreeLayerConvNet(**{**kwargs, "input_dim": tuple(kwargs["input_dim"])},
                                     dtype=np.float32)
        from .fully_connected_net import FullyConnectedNet
        return FullyConnectedNet(**kwargs, dtype=np.float32)
    except ImportError as e:
        raise CLIError(f"the {kind} model is not available: {e}") from e


def predict(model, X, batch_size=500):
    return np.concatenate([np.argmax(model.loss(X[i:i + batch_size]), axis=1)
                           for i in range(0, X.shape[0], batch_size)])


# ----------------------------------------------------------------------------- train

def _int_list(text):
    try:
        dims = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,128, got {text!r}")
    if any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    if len(dims) > MAX_LAYERS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LAYERS} hidden layers, got {len(dims)}")
    return dims


def _finite(text):
    v = float(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


_finite.__name__ = "float"      # argparse names the type in "invalid float value: 'x'"


def _non_negative(text):
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


_non_negative.__name__ = "float"


def _positive(kind):
    def parse(text):
        v = _finite(text) if kind is float else kind(text)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return v
    parse.__name__ = kind.__name__
    return parse


SEED_MAX = 2 ** 32 - 1          # the largest seed np.random.seed takes


def _seed(text):
    v = int(text)
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and {SEED_MAX} (NumPy's seed "
                                         f"range), got {text}")
    return v


_seed.__name__ = "int"


def _keep_prob(text):
    p = float(text)
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(
            f"--dropout is the probability of KEEPING a unit, 0 < p <= 1 (1 = off), got {text}")
    return p


def add_train_args(p, defaults=True):
    """The ``train`` flags; ``defaults=False`` leaves out every default, so that parsing tells
    which flags were given on the command line."""
    def add(*names, **kw):
        if not defaults:
            kw["default"] = argparse.SUPPRESS
        return p.add_argument(*names, **kw)

    add("--model", choices=("cnn", "fc"), default="cnn")
    add("--dataset", choices=DATASETS, default="sample")
    add("--data-dir", help="folder with the dataset files (else env var / cache)")
    add("--no-download", action="store_true", help="fail instead of downloading")
    add("--out", help="output folder (default runs/<model>-<dataset>, or with "
        "--resume the checkpoint's own folder)")
    add("--resume", help="a checkpoint_epoch_N.npz to continue from (its settings are reused); "
        "a run folder or its model.npz is refused with the name of the latest one")
    add("--epochs", type=_positive(int))
    add("--batch-size", type=_positive(int))
    add("--update-rule", choices=update_rule_names())
    add("--lr", type=_positive(float), help="learning rate")
    add("--lr-decay", type=_positive(float), help="learning-rate factor per epoch")
    add("--reg", type=_non_negative, help="L2 regularisation strength (>= 0)")
    add("--weight-decay", type=_finite,
        help="adamw only: decoupled weight decay (default 1e-2)")
    add("--weight-scale", type=_positive(float))
    add("--normalization", choices=("none", "batchnorm", "layernorm"), default="none",
        help="fc only")
    add("--dropout", type=_keep_prob, default=1.0, help="fc only: keep probability")
    add("--hidden-dims", type=_int_list, default=[256, 128], help="fc: e.g. 256,128")
    add("--num-filters", type=_positive(int), default=32, help="cnn")
    add("--filter-size", type=_positive(int), default=5, help="cnn (odd)")
    add("--hidden-dim", type=_positive(int), default=128, help="cnn")
    add("--seed", type=_seed, default=0)
    add("--num-train", type=_positive(int), help="use at most this many training images")
    add("--num-val", type=int, default=1000, help="validation images taken from train")
    add("--num-test", type=_positive(int), help="evaluate on at most this many")
    add("--print-every", type=_positive(int), default=100)
    add("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _fill_defaults(args):
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model == "cnn" and (args.normalization != "none" or args.dropout != 1.0):
        raise CLIError("--normalization and --dropout apply to --model fc; the ThreeLayerConvNet "
                       "has neither")
    if args.model == "cnn" and args.filter_size % 2 == 0:
        raise CLIError(f"--filter-size must be odd so the conv keeps the image size, got "
                       f"{args.filter_size}")
    if args.weight_decay is not None and args.update_rule != "adamw":
        raise CLIError(f"--weight-decay is AdamW's decoupled decay; with --update-rule "
                       f"{args.update_rule} use --reg (the L2 penalty in the loss), or pick "
                       f"--update-rule adamw")
    if args.weight_decay is not None and args.weight_decay < 0:
        raise CLIError(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.out is None:
        args.out = f"runs/{args.model}-{args.dataset}"


def optim_config(args):
    config = {"learning_rate": args.lr}
    if args.weight_decay is not None:
        config["weight_decay"] = args.weight_decay
    return config


_RESUMED = ("model", "dataset", "batch_size", "update_rule", "lr", "lr_decay", "reg",
            "weight_decay", "weight_scale", "normalization", "dropout", "hidden_dims",
            "num_filters", "filter_size", "hidden_dim", "seed", "num_train", "num_val")
# Saved too and taken on resume, but a flag given then changes them: the total number of
# epochs (to extend the run) and how many test images the summary scores.
_CARRIED = ("epochs", "num_test")


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_positive(v):
    return _is_real(v) and v > 0


# What each saved setting may be: the values its flag accepts, as JSON gives them back.
_SAVED_ARGS = {
    "model": lambda v: v in ("cnn", "fc"), "dataset": lambda v: v in DATASETS,
    "batch_size": _is_count, "epochs": _is_count,
    "update_rule": lambda v: isinstance(v, str) and v in update_rule_names(),
    "lr": _is_positive, "lr_decay": _is_positive, "weight_scale": _is_positive,
    "reg": lambda v: _is_real(v) and v >= 0,
    "weight_decay": lambda v: v is None or _is_real(v) and v >= 0,
    "normalization": lambda v: v in ("none", "batchnorm", "layernorm"),
    "dropout": lambda v: _is_real(v) and 0 < v <= 1,
    "hidden_dims": lambda v: isinstance(v, list) and all(_is_count(d) for d in v),
    "num_filters": _is_count, "filter_size": _is_count, "hidden_dim": _is_count,
    "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= SEED_MAX,
    "num_train": lambda v: v is None or _is_count(v), "num_val": _is_count,
    "num_test": lambda v: v is None or _is_count(v),
}


def _flag(key):
    return "--" + key.replace("_", "-")


def _show(value):
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def saved_settings(path):
    """The settings a ``train`` checkpoint was trained with, every one of ``_RESUMED`` and
    ``_CARRIED``; a file no run continues from exactly (a ``model.npz``) is refused first."""
    from .checkpoint import load_checkpoint

    state = load_checkpoint(path)
    check_resumable(path, state)
    meta = state.get("meta") if isinstance(state, dict) else None
    saved = meta.get("args") if isinstance(meta, dict) else None
    if not saved:
        raise CLIError(f"{path} holds no CLI settings; resume it from Python instead")
    if not isinstance(saved, dict):
        raise CLIError(f"{path}: its CLI settings are a {type(saved).__name__}, not a table of "
                       f"flags; it was not written by `train`")
    problems = [f"unknown setting {k!r}" for k in sorted(set(saved) - set(_SAVED_ARGS))]
    problems += [f"no {_flag(k)}" for k in ("model", "epochs") if k not in saved]
    problems += [f"{_flag(k)} is {saved[k]!r}" for k in _SAVED_ARGS
                 if k in saved and not _SAVED_ARGS[k](saved[k])]
    if problems:
        raise CLIError(f"{path}: its CLI settings are damaged ({'; '.join(problems)}); resume "
                       f"from a checkpoint written by `train`, or start a new run")
    # A setting newer than the checkpoint: the run had that flag's default.
    defaults = {**vars(_train_parser().parse_args([])), **DEFAULTS[saved["model"]]}
    settings = {k: saved[k] if k in saved else defaults.get(k) for k in _RESUMED + _CARRIED}
    done = state.get("epoch")
    settings["epochs_done"] = done if isinstance(done, int) and not isinstance(done, bool) else 0
    return settings


def _train_parser(defaults=True):
    p = argparse.ArgumentParser(add_help=False)
    add_train_args(p, defaults)
    return p


def _apply_resume(args):
    """Take the checkpoint's settings; refuse flags given on the command line that contradict
    them (``--epochs``, to extend the run, ``--num-test`` and the output flags may change)."""
    if Path(args.resume).is_dir():      # the --out folder of a run: say which file to pass
        latest = latest_checkpoint(str(Path(args.resume) / "checkpoint"))
        instead = f"pass the checkpoint to continue from: --resume {latest}" if latest else \
            "it holds no checkpoint_epoch_N.npz; pass a checkpoint written by `train`"
        raise CLIError(f"--resume {args.resume} is a folder; {instead}")
    saved = saved_settings(args.resume)
    given = getattr(args, "given", None)
    if given is None:               # not from main(): a flag differing from its default was given
        defaults = vars(_train_parser().parse_args([]))
        given = {k for k in _RESUMED if getattr(args, k, None) != defaults.get(k)}
    conflicts = []
    for key in _RESUMED:
        if key in given and getattr(args, key) != saved[key]:
            was = f"with {_flag(key)} {_show(saved[key])}" if saved[key] is not None else \
                f"without {_flag(key)}"
            conflicts.append(f"{_flag(key)} {_show(getattr(args, key))} but the checkpoint was "
                             f"trained {was}")
    if conflicts:
        raise CLIError(f"--resume {args.resume}: {'; '.join(conflicts)}; drop the "
                       f"flag{'s' if len(conflicts) > 1 else ''} to resume, or start a new run")
    for key in _RESUMED:
        setattr(args, key, saved[key])
    for key in _CARRIED:
        if getattr(args, key) is None:
            setattr(args, key, saved[key])
    if args.epochs < saved["epochs_done"]:  # the Solver would train nothing and rewrite the outputs
        raise CLIError(f"--resume {args.resume}: --epochs {args.epochs} but the checkpoint has "
                       f"already trained {saved['epochs_done']} epochs; --epochs is the total, so "
                       f"give at least {saved['epochs_done']} (more extends the run)")
    if args.out is None:            # continuing a run means writing on into its own folder
        args.out = str(Path(args.resume).parent)


def cmd_train(args):
    from .trainer import Solver

    if args.resume:
        _apply_resume(args)
    _fill_defaults(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder; give a folder for the run's "
                       f"outputs (it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"--out {out}: cannot create the folder ({e.strerror or e})") from e
    try:                            # now, not after the first epoch's training
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise CLIError(f"--out {out}: cannot write there ({e.strerror or e})") from e
    start = time.perf_counter()

    Xtr_raw, ytr, Xte_raw, yte, classes = load_dataset(args.dataset, args.data_dir,
                                                      not args.no_download)
    Xtr, ytr, Xval, yval = split(args, to_nchw(Xtr_raw), ytr)
    Xte = to_nchw(Xte_raw[:args.num_test]) if args.num_test else to_nchw(Xte_raw)
    yte = yte[:Xte.shape[0]]
    norm = fit_normalization(Xtr)
    Xtr, Xval, Xte = (normalize(X, norm) for X in (Xtr, Xval, Xte))

    kind, kwargs = model_spec(args, Xtr.shape[1:])
    from .trained_model import MAX_PARAMS, num_params
    if num_params(kind, kwargs) > MAX_PARAMS:   # evaluate would refuse what this run writes
        raise CLIError(f"this {kind} model would have {num_params(kind, kwargs):,} parameters; "
                       f"the command line trains and evaluates at most {MAX_PARAMS:,}")
    np.random.seed(args.seed)       # models without a seed argument draw their weights here
    model = build_model(kind, kwargs)
    meta = {"model": kind, "model_kwargs": kwargs, "normalization": norm,
            "dataset": args.dataset, "classes": list(classes),
            "args": {k: getattr(args, k) for k in _RESUMED + _CARRIED}}
    # On resume the Solver takes the checkpoint's optim_config, which its saved flags gave.
    solver = Solver(model, {"X_train": Xtr, "y_train": ytr, "X_val": Xval, "y_val": yval},
                    update_rule=args.update_rule,
                    optim_config=None if args.resume else optim_config(args),
                    lr_decay=args.lr_decay, batch_size=args.batch_size, num_epochs=args.epochs,
                    num_train_samples=1000, num_val_samples=None, print_every=args.print_every,
                    verbose=not args.quiet, seed=args.seed,
                    checkpoint_name=str(out / "checkpoint"), checkpoint_meta=meta,
                    keep_checkpoints=2)
    finished = False
    if args.resume:
        solver.resume(args.resume)
        finished = solver.epoch >= args.epochs
    if finished:
        print(f"note: --resume {args.resume}: the checkpoint has already trained all "
              f"{args.epochs} epochs, so there is nothing to train; give --epochs more than "
              f"{args.epochs} to extend the run", file=sys.stderr)
    with _writing(out):
        if finished:
            solver.restore_best()       # what train() would end with, without its warning
        else:
            solver.train()
        solver.save_checkpoint(out / "model.npz")

    y_pred = predict(model, Xte)
    test_acc = float(np.mean(y_pred == yte))
    with _writing(out):
        write_history(out / "history.csv", solver, Xtr.shape[0] // args.batch_size)
        write_plots(out, solver, model, kind, Xtr.shape[1:], yte, y_pred, classes)
    wall = time.perf_counter() - start
    print(f"{kind} on {args.dataset}: test accuracy {test_acc:.4f} ({int(np.sum(y_pred == yte))}"
          f"/{yte.size}), best val accuracy {solver.best_val_acc:.4f}, "
          f"{solver.epoch} epochs, wall time {wall:.1f} s; wrote {out}/")
    return 0


@contextlib.contextmanager
def _writing(out):
    """Turn a failed write into the run (a full disk, a folder where a file goes, a folder
    made read-only mid-run) into a ``CLIError``: exit 2, not 1, which means diverged."""
    try:
        yield
    except OSError as e:
        # os.replace(tmp, target) names the target second; open() has only the one
        where = getattr(e, "filename2", None) or e.filename
        raise CLIError(f"writing the run's outputs in {out} failed ("
                       f"{f'{where}: ' if where else ''}{e.strerror or e}); free some space or "
                       f"choose another --out") from e


def write_history(path, solver, iters_per_epoch):
    """One row per accuracy check: the first after iteration 1, then one per epoch."""
    iters_per_epoch = max(iters_per_epoch, 1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "iteration", "mean_loss", "train_acc", "val_acc"])
        for k, (tr, va) in enumerate(zip(solver.train_acc_history, solver.val_acc_history)):
            it = 1 if k == 0 else k * iters_per_epoch
            losses = solver.loss_history[:1] if k == 0 else \
                solver.loss_history[(k - 1) * iters_per_epoch:it]
            w.writerow([k, it, f"{np.mean(losses):.6f}", f"{tr:.4f}", f"{va:.4f}"])


def write_plots(out, solver, model, kind, input_dim, y_true, y_pred, classes):
    try:
        from . import plots
        plots.plot_loss(solver.loss_history, out / "loss.png")
        plots.plot_accuracy(solver.train_acc_history, solver.val_acc_history, out / "accuracy.png")
        W1 = model.params["W1"]
        plots.plot_filters(W1, out / "filters.png", input_shape=None if kind == "cnn" else input_dim,
                           title="conv1 filters" if kind == "cnn" else "W1 columns as images")
        plots.plot_confusion(y_true, y_pred, out / "confusion.png", class_names=list(classes))
    except ImportError as e:
        print(f"note: plots skipped ({e})", file=sys.stderr)


# ----------------------------------------------------------------------------- evaluate

def cmd_evaluate(args):
    from .trained_model import load_trained

    if Path(args.checkpoint).is_dir():  # the --out folder of a `train` run
        folder, args.checkpoint = args.checkpoint, str(Path(args.checkpoint) / "model.npz")
        if not Path(args.checkpoint).is_file():
            raise CLIError(f"{folder} holds no model.npz; pass the --out folder of a finished "
                           f"`train` run or one of its .npz files")
    model, meta = load_trained(args.checkpoint)
    dataset = args.dataset or meta["dataset"]
    _, _, Xte, yte, classes = load_dataset(dataset, args.data_dir, not args.no_download)
    if args.num_test:
        Xte, yte = Xte[:args.num_test], yte[:args.num_test]
    X = to_nchw(Xte)
    norm = meta["normalization"]
    if len(norm["mean"]) != X.shape[1]:
        raise CLIError(f"{dataset} images have {X.shape[1]} channel(s) but the model was trained "
                       f"on {len(norm['mean'])}; evaluate it on the dataset it was trained on")
    if meta["model_kwargs"]["num_classes"] != len(classes):
        raise CLIError(f"the model predicts {meta['model_kwargs']['num_classes']} classes but "
                       f"{dataset} has {len(classes)}; evaluate it on the dataset it was "
                       f"trained on")
    X = normalize(X, norm)
    cnn = meta["model"] == "cnn"
    expected = meta["model_kwargs"]["input_dim"]
    expected = tuple(expected) if cnn else expected
    got = X.shape[1:] if cnn else int(np.prod(X.shape[1:]))
    if got != expected:
        raise CLIError(f"{dataset} images give inputs of {got} but the model takes {expected}; "
                       f"evaluate it on the dataset it was trained on")
    y_pred = predict(model, X, args.batch_size)
    print(f"{args.checkpoint} on {dataset} test ({yte.size} images): accuracy "
          f"{np.mean(y_pred == yte):.4f}")
    print(f"{'class':<14}{'accuracy':>9}{'count':>7}")
    for c, name in enumerate(classes):
        mask = yte == c
        if mask.any():
            print(f"{name:<14}{np.mean(y_pred[mask] == c):>9.4f}{int(mask.sum()):>7}")
    return 0


# ----------------------------------------------------------------------------- main

class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gets the one-line error every other mistake gets, not the usage
    block first (subcommands' parsers are of this class too)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(defaults=True):
    parser = _Parser(
        prog="python -m deep_learning_suite",
        description="CS231n Toolkit: train and evaluate NumPy networks, check gradients.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,gradcheck}")
    p = sub.add_parser("train", help="train a network and write checkpoint, history and plots")
    add_train_args(p, defaults)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="accuracy of a checkpoint on a test split")
    p.add_argument("checkpoint", help="a .npz written by `train`, or its --out folder "
                                      "(then its model.npz)")
    p.add_argument("--dataset", choices=DATASETS, help="default: the one it was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    p.add_argument("--num-test", type=_positive(int))
    p.add_argument("--batch-size", type=_positive(int), default=500)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("gradcheck", help="analytic vs numerical gradients of every layer")
    p.add_argument("--only", help="comma-separated substrings of the check names to run")
    p.set_defaults(func=lambda a: __import__(f"{__package__}.gradcheck",
                                             fromlist=["run"]).run(a.only))
    return parser


def main(argv=None):
    """Entry point of ``python -m deep_learning_suite`` and the ``cs231n-toolkit`` script."""
    args = build_parser().parse_args(argv)
    if args.command == "train":     # which flags the user typed, for --resume to check
        args.given = set(vars(build_parser(defaults=False).parse_args(argv))) - {"command", "func"}
    from .checkpoint import CheckpointError
    from .data import CorruptDataError, DatasetNotFoundError

    try:
        return args.func(args)
    except (CLIError, DatasetNotFoundError, CorruptDataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDivergedError as e:      # its message says what to change
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
