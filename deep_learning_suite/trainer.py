"""The ``Solver``: minibatch training of a model with the CS231n interface.

A model is anything with

* ``model.params``: dict of parameter name -> ndarray (the very dict ``loss`` reads);
* ``model.loss(X, y=None)``: class scores (N, C) when ``y`` is None, else ``(loss, grads)``
  with ``grads`` keyed like ``params``.

Usage, as in the course::

    solver = Solver(model, data, update_rule='adam', optim_config={'learning_rate': 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100, seed=0)
    solver.train()
    solver.best_val_acc, solver.loss_history

Beyond the course: a ``seed`` and the Solver's own ``np.random.Generator`` for minibatches,
a tqdm progress bar, checkpoints each epoch in a format that runs no code when read
(``checkpoint.py``), ``resume(path)`` continuing a run exactly, and a clear error when the
loss stops being finite.
"""

import copy
import glob
import math
import os
import re
import time
import warnings

import numpy as np

from . import optim
from ._validate import check_int, check_labels
from .checkpoint import CheckpointError, flatten, load_checkpoint, save_checkpoint
from .utils import generator

_OPTIONS = {
    "update_rule": "sgd", "optim_config": None, "lr_decay": 1.0, "batch_size": 100,
    "num_epochs": 10, "num_train_samples": 1000, "num_val_samples": None,
    "checkpoint_name": None, "print_every": 10, "verbose": True, "seed": None,
    "resume_from": None, "checkpoint_meta": None, "keep_checkpoints": None,
}


def update_rule_names():
    """The rules of :mod:`optim` a Solver takes by name: its public functions, nothing it imports."""
    return [name for name, f in vars(optim).items()
            if callable(f) and not name.startswith("_")
            and getattr(f, "__module__", None) == optim.__name__]


def get_update_rule(update_rule, who="Solver"):
    """The function for ``update_rule``: a name in :mod:`optim`, or a rule function itself."""
    if isinstance(update_rule, str):
        names = update_rule_names()
        if update_rule not in names:
            raise ValueError(f'{who}: invalid update_rule "{update_rule}"; use one of '
                             f"{', '.join(map(repr, names))} or a function")
        return getattr(optim, update_rule)
    if callable(update_rule):
        return update_rule
    raise ValueError(f"{who}: update_rule must be a name or a function, got {update_rule!r}")


def _plain(value):
    """A NumPy scalar as the Python number it holds; anything else (arrays included) as is.

    Under NumPy 2 (NEP 50) a Python float scales a float32 array and leaves it float32, but
    an ``np.float64`` (from ``np.logspace``, ``10 ** np.random.uniform``) promotes it to
    float64. Hyperparameters are kept as Python numbers so that they never change the
    dtype of the weights they update.
    """
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    return value


# What resume() reads from a checkpoint: Solver.state_dict() writes all of these.
_SOLVER_STATE = ("params", "best_params", "model_state", "optim_configs", "batch_size", "epoch",
                 "iteration", "loss_history", "train_acc_history", "val_acc_history",
                 "best_val_acc", "rng_state", "numpy_global_rng")
# What NumPy raises for a generator state of the wrong form (a list too short to unpack, a
# string for a key, 3 keys where MT19937 has 624, a number too large for uint32, ...).
_BAD_STATE = (TypeError, ValueError, KeyError, IndexError, OverflowError)


def _param_mismatch(theirs, mine, their_class, my_class):
    """What differs between a checkpoint's and a model's ``{name: (shape, dtype)}``."""
    def spec(v):
        return f"{tuple(v[0])} {v[1]}"
    parts = []
    if their_class and their_class != my_class:
        parts.append(f"it was written for a {their_class}, this is a {my_class}")
    only_theirs = sorted(set(theirs) - set(mine))
    only_mine = sorted(set(mine) - set(theirs))
    changed = sorted(k for k in set(theirs) & set(mine) if theirs[k] != mine[k])
    if only_theirs:
        parts.append("only in the checkpoint: " + ", ".join(only_theirs))
    if only_mine:
        parts.append("only in the model: " + ", ".join(only_mine))
    if changed:
        parts.append("; ".join(f"{k} is {spec(theirs[k])} in the checkpoint, {spec(mine[k])} "
                               f"in the model" for k in changed))
    return "; ".join(parts)


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the model holds the best parameters seen so far."""


def check_finite_loss(loss, what, where, advice):
    """Raise :class:`TrainingDivergedError` when ``loss`` is NaN or infinite.

    The training loops call this between computing a loss and stepping, so that one bad
    batch cannot write NaN into the parameters (after that, every later loss is NaN too).
    The loops call ``loss.item()`` for their logs anyway, so the check adds no device sync.

    Parameters
    ----------
    loss : a 0-dim tensor, a NumPy scalar or a float
    what : str, the loss's name in the message, e.g. ``"contrastive loss"``
    where : str, where it happened, e.g. ``"in epoch 2 of 10 at batch 5"``
    advice : str, what to try

    Raises
    ------
    TrainingDivergedError
        With the message ``"{what} is {value} {where}; {advice}"``.
    """
    # .item() reads a tensor without the warning float() gives one that requires grad.
    value = float(loss.item() if hasattr(loss, "item") else loss)
    if not math.isfinite(value):
        raise TrainingDivergedError(f"{what} is {value} {where}; {advice}")


class Solver:
    """Train ``model`` on ``data`` with a first-order update rule.

    Parameters
    ----------
    model : object with ``params`` and ``loss(X, y=None)``
    data : dict with ``X_train, y_train, X_val, y_val``
    update_rule : str or callable, default 'sgd'
        A name in ``optim`` ('sgd', 'sgd_momentum', 'rmsprop', 'adam', ...) or a function
        ``rule(w, dw, config) -> (next_w, config)``.
    optim_config : dict, optional
        Hyperparameters for the rule; every parameter gets its own copy (its own state).
    lr_decay : float, default 1.0
        ``learning_rate`` is multiplied by this after every epoch. NumPy scalars, here and
        in ``optim_config``, are used as the Python numbers they hold, so an ``np.float64``
        never turns float32 weights into float64.
    batch_size : int, default 100
        A positive whole number (``100.0`` passes as 100, ``0.5`` is refused).
    num_epochs : int, default 10
        A non-negative whole number.
    num_train_samples : int or None, default 1000
        Training images used to measure training accuracy each epoch (None: all).
    num_val_samples : int or None, default None
        Validation images used each epoch (None: all).
    checkpoint_name : str, optional
        When given, ``{checkpoint_name}_epoch_{e}.npz`` is written after every epoch.
    print_every : int, default 10
        Print the loss every this many iterations (when ``verbose``); at least 1.
    verbose : bool, default True
        Show a progress bar and print losses and accuracies.
    seed : int, optional
        Seeds the Solver's generator (minibatches and accuracy subsamples). Without one
        the generator is seeded from NumPy's global stream, so ``np.random.seed`` before
        building the Solver makes its run reproducible.
    resume_from : str, optional
        A checkpoint to continue from (same as calling ``resume``).
    checkpoint_meta : dict, optional
        JSON-able data stored in every checkpoint (e.g. how to rebuild the model); checked
        here, so that data no checkpoint can hold fails now, not after the first epoch.
    keep_checkpoints : int, optional
        Keep only the newest this many ``_epoch_`` files (None: keep all, as the course does).
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"Solver: unrecognized option(s) {unknown}; valid options are "
                             f"{sorted(_OPTIONS)}")
        for key in ("X_train", "y_train", "X_val", "y_val"):
            if key not in data:
                raise ValueError(f"Solver: data must hold X_train, y_train, X_val, y_val; "
                                 f"{key!r} is missing")
        if len(data["X_train"]) != len(data["y_train"]) or len(data["X_val"]) != len(data["y_val"]):
            raise ValueError(
                f"Solver: X_train/y_train have {len(data['X_train'])}/{len(data['y_train'])} rows "
                f"and X_val/y_val {len(data['X_val'])}/{len(data['y_val'])}; they must match")
        if len(data["X_train"]) == 0:
            raise ValueError("Solver: X_train is empty")
        if len(data["X_val"]) == 0:
            # an accuracy of 0 on no images never improves: best_params would stay the
            # untrained initial weights
            raise ValueError("Solver: X_val is empty; best_params are chosen by validation "
                             "accuracy, so give at least one validation image")
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        opts = {**_OPTIONS, **kwargs}
        self.update_rule = opts["update_rule"]
        # resume() refuses a checkpoint whose optim_config differs from one given here
        self._optim_config_given = opts["optim_config"] is not None
        # Only NumPy scalars change: an array in optim_config (a rule's state) stays an array.
        self.optim_config = {k: _plain(v) for k, v in (opts["optim_config"] or {}).items()}
        # What checkpoints record as the config this run started from (None: resumed from a
        # checkpoint that did not record one).
        self._run_optim_config = self.optim_config
        self.lr_decay = _plain(opts["lr_decay"])
        if isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, (int, float)):
            raise ValueError(f"Solver: lr_decay must be a number (1.0 for no decay), "
                             f"got {self.lr_decay!r}")
        # Checked before int(): int(0.5) is 0, and 0.5 epochs would silently train none.
        self.batch_size = check_int("Solver", "batch_size", opts["batch_size"], 1)
        self.num_epochs = check_int("Solver", "num_epochs", opts["num_epochs"], 0)
        self.num_train_samples, self.num_val_samples = (
            None if opts[k] is None else check_int("Solver", k, opts[k], 1)
            for k in ("num_train_samples", "num_val_samples"))
        self.checkpoint_name = opts["checkpoint_name"]
        # t % print_every picks the iterations to print: 0 would divide by zero mid-run.
        self.print_every = check_int("Solver", "print_every", opts["print_every"], 1)
        self.verbose = opts["verbose"]
        self.seed = opts["seed"]
        self.checkpoint_meta = opts["checkpoint_meta"]
        try:                        # what save_checkpoint does with it, here and not per epoch
            flatten(self.checkpoint_meta, {}, "checkpoint_meta")
        except TypeError as e:
            raise ValueError(f"Solver: checkpoint_meta must be data a checkpoint can hold (dicts "
                             f"with string keys, lists, numbers, strings, numeric arrays): "
                             f"{e}") from None
        self.keep_checkpoints = None if opts["keep_checkpoints"] is None else \
            check_int("Solver", "keep_checkpoints", opts["keep_checkpoints"], 1)
        self._rule = get_update_rule(self.update_rule)
        self._reset()
        if opts["resume_from"] is not None:
            self.resume(opts["resume_from"])

    def _reset(self):
        """Book-keeping for a fresh run; ``train`` and ``resume`` build on it."""
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.epoch_times = []           # seconds of minibatch steps per epoch (no evaluation)
        # Without a seed it follows np.random.seed, as the course's Solver (np.random) does.
        self.rng = generator(self.seed)
        self.optim_configs = {p: copy.deepcopy(self.optim_config) for p in self.model.params}
        # True while model.params are best_params put back by train() (or after a divergence),
        # not the last iteration's: a checkpoint saved then cannot be resumed exactly.
        self._params_are_best = False
        # The last iteration's params while best_params stand in for them (after train()), so
        # that a later train() with more epochs continues the run exactly.
        self._last_params = None

    # ------------------------------------------------------------------ training

    def _step(self):
        """One minibatch: forward, backward, update every parameter."""
        num_train = self.X_train.shape[0]
        batch_mask = self.rng.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        if not np.isfinite(loss):
            self._diverged(loss)
        self.loss_history.append(float(loss))
        for p, w in self.model.params.items():
            next_w, next_config = self._rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config
        self._params_are_best = False

    def restore_best(self):
        """Put ``best_params`` in the model, as ``train()`` does when it ends. A later
        ``train()`` with more epochs goes on from the last iteration's parameters."""
        if not self._params_are_best:
            # The step replaces each array rather than writing into it, so references suffice.
            self._last_params = dict(self.model.params)
        self.model.params.update({k: v.copy() for k, v in self.best_params.items()})
        self._params_are_best = True

    def _diverged(self, loss):
        # Keep the model usable: put back the best parameters before reporting. The last
        # ones are not kept: they gave the non-finite loss.
        self.restore_best()
        self._last_params = None
        lr = next(iter(self.optim_configs.values()), {}).get("learning_rate")
        raise TrainingDivergedError(
            f"loss is {loss} at iteration {self.iteration + 1} (epoch {self.epoch + 1} of "
            f"{self.num_epochs}); training stopped and the model holds the best parameters "
            f"so far (val acc {self.best_val_acc:.4f}). Lower the learning rate "
            f"(now {lr}) or the weight scale.")

    def check_accuracy(self, X, y, num_samples=None, batch_size=100, name="y"):
        """Fraction of ``X`` classified as ``y``.

        Parameters
        ----------
        X : ndarray, (N, ...) inputs;  y : ndarray of int, (N,)
            Labels in ``[0, C)`` for the model's ``C`` score columns.
        num_samples : int, optional
            Score a random subset of this size (drawn, with replacement as in the course, from
            the Solver's own generator, so checkpoints capture it); a positive integer.
        batch_size : int
            Images scored per forward pass; a positive integer.
        name : str
            What to call ``y`` in error messages (``train`` passes 'y_train' and 'y_val').

        Returns
        -------
        acc : float in [0, 1]

        Raises
        ------
        ValueError
            ``X`` and ``y`` differ in length, ``y`` holds labels that are not integers in
            ``[0, C)`` (training labels meet the same check in the model's loss; without it
            here, wrong validation labels would only show as an accuracy of 0), or
            ``num_samples`` or ``batch_size`` is not a positive integer.
        """
        batch_size = check_int("check_accuracy", "batch_size", batch_size, 1)
        if num_samples is not None:
            num_samples = check_int("check_accuracy", "num_samples", num_samples, 1)
        N = X.shape[0]
        y = np.asarray(y)
        if y.shape[:1] != (N,):
            raise ValueError(f"check_accuracy: X has {N} rows but {name} has "
                             f"{len(y) if y.ndim else 'no'} labels (shape {y.shape}); give "
                             f"one label per row of X")
        y_all = y
        if num_samples is not None and N > num_samples:
            mask = self.rng.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        if N == 0:
            return 0.0
        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        # All the labels, not only the sample: a bad one is a bad one whichever are drawn.
        check_labels(y_all, len(y_all), scores.shape[1], name=name)
        return float(np.mean(np.concatenate(y_pred) == y))

    def train(self):
        """Run the optimisation; afterwards the model holds ``best_params``.

        Training runs from the current iteration up to ``num_epochs`` epochs in all. A Solver
        that has already trained them (a second call, or one resumed from the last epoch's
        checkpoint) trains nothing and warns; raise ``solver.num_epochs`` to train further:
        the next call then goes on from the last iteration's parameters (not the best ones
        it put in the model), exactly as one longer run would.
        """
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        if 0 < num_iterations <= self.iteration:
            warnings.warn(f"Solver.train: this Solver has already trained its "
                          f"num_epochs={self.num_epochs} epochs, so this call trains nothing "
                          f"and only puts best_params back in the model; raise "
                          f"solver.num_epochs to train further", stacklevel=2)
        elif self._params_are_best and self._last_params is not None:
            self.model.params.update(self._last_params)
            self._params_are_best, self._last_params = False, None
        bar = None
        step_time = 0.0
        if self.verbose:
            from tqdm.auto import tqdm
            # disable=None: a bar in terminals and notebooks, none when stderr is a log
            # file or a pipe, where each redraw would add a line of carriage returns.
            bar = tqdm(total=num_iterations, initial=self.iteration, unit="it", leave=False,
                       desc="training", disable=None)
        try:
            for t in range(self.iteration, num_iterations):
                tic = time.perf_counter()
                self._step()
                step_time += time.perf_counter() - tic
                self.iteration = t + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}", epoch=self.epoch + 1,
                                    refresh=False)
                if self.verbose and t % self.print_every == 0:
                    self._print(f"(Iteration {t + 1} / {num_iterations}) loss: "
                                f"{self.loss_history[-1]:f}", bar)
                epoch_end = (t + 1) % iterations_per_epoch == 0
                if epoch_end:
                    self.epoch_times.append(step_time)
                    step_time = 0.0
                    self.epoch += 1
                    for config in self.optim_configs.values():
                        if "learning_rate" in config:
                            # _plain: a rule may have left an np.float64 there (see _plain)
                            config["learning_rate"] = _plain(config["learning_rate"]
                                                             * self.lr_decay)
                if t == 0 or epoch_end or t == num_iterations - 1:
                    self._record_accuracy(bar)
                if epoch_end:
                    self._save_checkpoint(bar)
        finally:
            if bar is not None:
                bar.close()
        self.restore_best()

    def _record_accuracy(self, bar):
        train_acc = self.check_accuracy(self.X_train, self.y_train,
                                        num_samples=self.num_train_samples, name="y_train")
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples,
                                      name="y_val")
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if self.verbose:
            self._print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                        f"val_acc: {val_acc:f}", bar)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}

    @staticmethod
    def _print(msg, bar):
        if bar is not None:
            bar.write(msg)
        else:
            print(msg)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self):
        """Everything needed to continue this run exactly, as arrays and JSON values."""
        model_state = {}
        for name, value in vars(self.model).items():
            if name != "params" and _holds_array(value) and _checkpointable(value):
                model_state[name] = value
        legacy = np.random.get_state()
        return {
            "model_class": type(self.model).__name__,
            "params": self.model.params,
            "best_params": self.best_params,
            "model_state": model_state,
            "optim_configs": self.optim_configs,
            "update_rule": _rule_name(self.update_rule),
            "optim_config": self._run_optim_config,
            "params_are_best": self._params_are_best,
            "lr_decay": self.lr_decay, "batch_size": self.batch_size,
            "num_epochs": self.num_epochs, "epoch": self.epoch, "iteration": self.iteration,
            "loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history, "best_val_acc": self.best_val_acc,
            "rng_state": self.rng.bit_generator.state,
            "numpy_global_rng": list(legacy),
            "meta": self.checkpoint_meta,
        }

    def save_checkpoint(self, path):
        """Write ``state_dict()`` to ``path`` atomically; returns the path written.

        Saved after ``train()`` (the model then holds ``best_params``, the counters and
        optimizer state are the last iteration's), the file is for evaluation: ``resume``
        refuses it and names the run's latest epoch checkpoint instead.
        """
        return save_checkpoint(path, self.state_dict())

    def _save_checkpoint(self, bar=None):
        if self.checkpoint_name is None:
            return
        path = self.save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        if self.verbose:
            self._print(f"Saving checkpoint to {path}", bar)
        if self.keep_checkpoints is not None:
            # only after the new file is safely in place, so a good checkpoint always exists
            for epoch, old in _epoch_checkpoints(self.checkpoint_name):
                if epoch <= self.epoch - self.keep_checkpoints:
                    os.remove(old)

    def resume(self, path):
        """Load a checkpoint from ``path`` so that ``train()`` continues that run exactly.

        Raises
        ------
        CheckpointError
            The file is unreadable or damaged (see ``load_checkpoint``), is a checkpoint of
            something other than a Solver, was saved after ``train()`` (it holds the best
            parameters, not the last iteration's), does not fit this model, or was trained
            with another batch size, update rule, ``lr_decay`` or (when one is given here)
            ``optim_config``. Nothing is changed then.
        """
        state = load_checkpoint(path)
        missing = [k for k in _SOLVER_STATE if k not in state] if isinstance(state, dict) \
            else list(_SOLVER_STATE)
        if missing:
            raise CheckpointError(f"{path} is a cs231n-toolkit checkpoint but not a Solver's: it "
                                  f"lacks {', '.join(missing)}; resume from a file written by "
                                  f"Solver.save_checkpoint or by training with checkpoint_name")
        params = state["params"]
        if not isinstance(params, dict) or not all(isinstance(v, np.ndarray)
                                                   for v in params.values()):
            raise CheckpointError(f"{path} is not a Solver checkpoint: its 'params' is not a "
                                  f"dict of arrays; resume from a file written by "
                                  f"Solver.save_checkpoint")
        mine = {k: (v.shape, v.dtype) for k, v in self.model.params.items()}
        theirs = {k: (v.shape, v.dtype) for k, v in params.items()}
        if mine != theirs:
            why = _param_mismatch(theirs, mine, state.get("model_class"), type(self.model).__name__)
            raise CheckpointError(f"checkpoint {path} does not fit this model: {why}; build "
                                  f"the model with the checkpoint's settings")
        check_resumable(path, state)
        _check_run_state(path, state, mine)
        # Another rule or schedule would continue from the checkpoint's optimizer state as if
        # it were its own: neither the run asked for here nor the one resumed.
        mine = {"batch_size": self.batch_size, "update_rule": _rule_name(self.update_rule),
                "lr_decay": self.lr_decay}
        for name, value in mine.items():
            # batch_size is in every Solver checkpoint, the other two in all but hand-made ones
            if name in state and state[name] != value:
                raise CheckpointError(f"checkpoint {path} was trained with {name} "
                                      f"{state[name]!r}, this Solver uses {value!r}; build the "
                                      f"Solver with the checkpoint's {name} to continue that run")
        # Checkpoints from before it was stored have no optim_config to compare with.
        saved_config = state.get("optim_config")
        if self._optim_config_given and isinstance(saved_config, dict):
            diff = _config_mismatch(saved_config, self.optim_config)
            if diff:
                raise CheckpointError(f"checkpoint {path}: optim_config differs from the one it "
                                      f"was trained with ({diff}); pass the checkpoint's, or "
                                      f"none to take it from the checkpoint")
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = state["rng_state"]
        except _BAD_STATE as e:
            raise CheckpointError(_bad_rng(path, "rng_state", e)) from None
        legacy = state["numpy_global_rng"]
        try:
            kind, keys, pos, has_gauss, cached = legacy
            legacy = (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
            np.random.RandomState().set_state(legacy)      # a throwaway one: checks, sets nothing
        except _BAD_STATE as e:
            raise CheckpointError(_bad_rng(path, "numpy_global_rng", e)) from None

        self.model.params.update(params)
        for name, value in state["model_state"].items():
            setattr(self.model, name, value)
        self.best_params = state["best_params"]
        self.optim_configs = state["optim_configs"]
        self.epoch, self.iteration = state["epoch"], state["iteration"]
        self.loss_history = state["loss_history"]
        self.train_acc_history = state["train_acc_history"]
        self.val_acc_history = state["val_acc_history"]
        self.best_val_acc = state["best_val_acc"]
        self._run_optim_config = saved_config if isinstance(saved_config, dict) else None
        self._params_are_best = False
        self.rng = rng
        np.random.set_state(legacy)
        return state


def _check_run_state(path, state, layout):
    """Refuse counters, histories and best parameters of the wrong kind in a Solver checkpoint.

    ``load_checkpoint`` has checked the file, not what a hand-edited or foreign one holds in
    it; these would otherwise fail (or quietly mislead: "True epochs") only later, in
    ``train()``. ``layout`` is the model's ``{name: (shape, dtype)}``.
    """
    def refuse(what):
        raise CheckpointError(f"checkpoint {path}: {what}; resume from a file written by "
                              f"Solver.save_checkpoint")

    def is_number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for name in ("epoch", "iteration"):
        v = state[name]
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            refuse(f"its {name} is {v!r}, not a count of 0 or more")
    for name in ("loss_history", "train_acc_history", "val_acc_history"):
        if not (isinstance(state[name], list) and all(is_number(v) for v in state[name])):
            refuse(f"its {name} is not a list of numbers")
    if not is_number(state["best_val_acc"]):
        refuse(f"its best_val_acc is {state['best_val_acc']!r}, not a number")
    best = state["best_params"]
    if not (isinstance(best, dict) and all(isinstance(v, np.ndarray) for v in best.values())
            and {k: (v.shape, v.dtype) for k, v in best.items()} == layout):
        refuse("its best_params are not arrays of the model's parameters' names, shapes and dtypes")
    configs = state["optim_configs"]
    if not (isinstance(configs, dict) and set(configs) == set(layout)
            and all(isinstance(c, dict) for c in configs.values())):
        refuse("its optim_configs are not one dict per parameter of the model")
    if not isinstance(state["model_state"], dict):
        refuse("its model_state is not a dict")


def _rule_name(update_rule):
    """How a checkpoint names ``update_rule``: the name given, else the function's name."""
    if isinstance(update_rule, str):
        return update_rule
    return getattr(update_rule, "__name__", "custom")


def _config_mismatch(theirs, mine):
    """What differs between a checkpoint's ``optim_config`` and the one given, or ''."""
    def same(a, b):
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) \
                and a.shape == b.shape and np.array_equal(a, b)
        return a == b

    def show(v):
        return f"an array of shape {v.shape}" if isinstance(v, np.ndarray) else repr(v)

    parts = []
    for k in sorted(set(theirs) | set(mine)):
        if k not in mine:
            parts.append(f"{k} is {show(theirs[k])} in the checkpoint, not given here")
        elif k not in theirs:
            parts.append(f"{k} is not in the checkpoint's, {show(mine[k])} here")
        elif not same(theirs[k], mine[k]):
            parts.append(f"{k} is {show(theirs[k])} in the checkpoint, {show(mine[k])} here")
    return "; ".join(parts)


def _bad_rng(path, key, error):
    return (f"checkpoint {path}: its {key} is not a random generator's state "
            f"({type(error).__name__}: {error}); it was edited or written by another program, "
            f"use another checkpoint")


def check_resumable(path, state):
    """Refuse a checkpoint saved after ``train()`` put the best parameters back in the model.

    Its parameters are the best-validation ones while its epoch, iteration, optimizer and
    random states are the last iteration's, so no training run continues from it exactly
    (the CLI's ``model.npz`` is such a file). The run's latest ``*_epoch_N.npz`` in the same
    folder, when there is one, is named as the file to resume from instead.

    Raises
    ------
    CheckpointError
    """
    if isinstance(state, dict) and state.get("params_are_best") is True:
        folder = os.path.dirname(os.fspath(path)) or "."
        found = _epoch_files(os.path.join(glob.escape(folder), "*"), ".+")    # any run's
        instead = f"resume from {max(found)[1]}" if found else \
            f"resume from the run's latest *_epoch_N.npz checkpoint (there is none in {folder})"
        raise CheckpointError(f"{path} holds the best-validation weights, not the last "
                              f"iteration's, so training cannot continue from it exactly; "
                              f"{instead}")


def _holds_array(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_array(v) for v in value)
    return False


def _checkpointable(value):
    try:
        flatten(value, {}, "probe")
    except TypeError:
        return False
    return True


def _epoch_checkpoints(checkpoint_name):
    """``(epoch, path)`` of every ``{checkpoint_name}_epoch_{e}.npz`` on disk."""
    return _epoch_files(glob.escape(checkpoint_name), re.escape(os.path.basename(checkpoint_name)))


def _epoch_files(prefix_glob, run_pattern):
    """``(epoch, path)`` of the files ``{prefix_glob}_epoch_*.npz`` whose name is
    ``{run_pattern}_epoch_{e}.npz``, ``run_pattern`` a regular expression."""
    pattern = re.compile(run_pattern + r"_epoch_(\d+)\.npz$")
    found = []
    for p in glob.glob(prefix_glob + "_epoch_*.npz"):
        m = pattern.fullmatch(os.path.basename(p))
        if m:
            found.append((int(m.group(1)), p))
    return found


def latest_checkpoint(checkpoint_name):
    """Path of ``{checkpoint_name}_epoch_{e}.npz`` with the largest ``e``, or None."""
    found = _epoch_checkpoints(checkpoint_name)
    return max(found)[1] if found else None
