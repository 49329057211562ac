"""``CaptioningSolver``: minibatch training of a captioning model (CS231n assignment 3).

A model is anything with ``params`` and ``loss(features, captions) -> (loss, grads)``, such as
:class:`~deep_learning_suite.captioning_rnn.CaptioningRNN`. Data is the dict of
:func:`~deep_learning_suite.coco.load_coco_data` (``train_captions``, ``train_image_idxs``,
``train_features``; URLs and the validation split are not needed to train).

Usage, as in the course::

    solver = CaptioningSolver(model, data, update_rule='adam', num_epochs=50, batch_size=25,
                              optim_config={'learning_rate': 5e-3}, lr_decay=0.95)
    solver.train()
    solver.loss_history

The update rules, their per-parameter configs and the learning-rate decay after each epoch
work as in :class:`~deep_learning_suite.trainer.Solver`. A captioning model has no accuracy,
so there is no validation or best-parameter tracking: the model keeps its final parameters.
"""

import copy

import numpy as np

from ._validate import check_int
from .coco import sample_coco_minibatch
# _plain is the Solver's own helper, shared within the package so both solvers treat NumPy
# scalar hyperparameters alike.
from .trainer import TrainingDivergedError, _plain, get_update_rule
from .utils import generator

_OPTIONS = {"update_rule": "sgd", "optim_config": None, "lr_decay": 1.0, "batch_size": 100,
            "num_epochs": 10, "print_every": 10, "verbose": True, "seed": None}


class CaptioningSolver:
    """Train ``model`` on the captions of ``data``.

    Parameters
    ----------
    model : object with ``params`` and ``loss(features, captions)``
    data : dict with ``train_captions (N, T)``, ``train_image_idxs (N,)``, ``train_features``
    update_rule : str or callable, default 'sgd'
        A name in ``optim`` or a function ``rule(w, dw, config) -> (next_w, config)``.
    optim_config : dict, optional
        Hyperparameters for the rule; every parameter gets its own copy.
    lr_decay : float, default 1.0
        ``learning_rate`` is multiplied by this after every epoch. NumPy scalars, here and
        in ``optim_config``, are used as the Python numbers they hold, so an ``np.float64``
        never turns float32 weights into float64 (as in ``Solver``).
    batch_size : int, default 100
        A positive whole number (``25.0`` passes as 25, ``2.5`` is refused).
    num_epochs : int, default 10
        A non-negative whole number. An epoch is ``max(N // batch_size, 1)`` minibatches.
    print_every : int, default 10
        Print the loss every this many iterations (when ``verbose``); at least 1.
    verbose : bool, default True
    seed : int, optional
        Seeds the minibatch draws; None follows ``np.random.seed``.

    Raises
    ------
    ValueError
        An unknown option, an option of the wrong kind, or ``data`` without consistent
        training arrays (see ``check_caption_data``).
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"CaptioningSolver: unrecognized option(s) {unknown}; valid options "
                             f"are {sorted(_OPTIONS)}")
        check_caption_data("CaptioningSolver", data)
        opts = {**_OPTIONS, **kwargs}
        self.model, self.data = model, data
        self.update_rule = opts["update_rule"]
        # Only NumPy scalars change: an array in optim_config (a rule's state) stays an array.
        self.optim_config = {k: _plain(v) for k, v in (opts["optim_config"] or {}).items()}
        # Checked here, not when the first epoch ends and the decay multiplies by it.
        self.lr_decay = _plain(opts["lr_decay"])
        if isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, (int, float)):
            raise ValueError(f"CaptioningSolver: lr_decay must be a number (1.0 for no decay), "
                             f"got {self.lr_decay!r}")
        # Checked before int(): int(0.5) is 0, and 0.5 epochs would silently train none.
        self.batch_size = check_int("CaptioningSolver", "batch_size", opts["batch_size"], 1)
        self.num_epochs = check_int("CaptioningSolver", "num_epochs", opts["num_epochs"], 0)
        # t % print_every picks the iterations to print: 0 would divide by zero mid-run.
        self.print_every = check_int("CaptioningSolver", "print_every", opts["print_every"], 1)
        self.verbose = opts["verbose"]
        self.seed = opts["seed"]
        self._rule = get_update_rule(self.update_rule, "CaptioningSolver")
        self._reset()

    def _reset(self):
        self.epoch = 0
        self.loss_history = []
        self.rng = generator(self.seed)
        self.optim_configs = {p: copy.deepcopy(self.optim_config) for p in self.model.params}

    def _step(self, t):
        captions, features, _ = sample_coco_minibatch(self.data, self.batch_size, "train", self.rng)
        loss, grads = self.model.loss(features, captions)
        if not np.isfinite(loss):
            lr = next(iter(self.optim_configs.values()), {}).get("learning_rate")
            raise TrainingDivergedError(
                f"loss is {loss} at iteration {t + 1} (epoch {self.epoch + 1} of "
                f"{self.num_epochs}); training stopped before that update. Lower the learning "
                f"rate (now {lr}).")
        self.loss_history.append(float(loss))
        for p, w in self.model.params.items():
            self.model.params[p], self.optim_configs[p] = self._rule(w, grads[p], self.optim_configs[p])

    def train(self):
        """Run the optimisation; ``loss_history`` holds one loss per minibatch."""
        run_epochs(self, end_of_epoch=self._decay_learning_rate)

    def _decay_learning_rate(self):
        for config in self.optim_configs.values():
            if "learning_rate" in config:
                # _plain: a rule may have left an np.float64 there (see trainer._plain)
                config["learning_rate"] = _plain(config["learning_rate"] * self.lr_decay)


def check_caption_data(who, data):
    """Require the training arrays a captioning solver draws its minibatches from.

    Parameters
    ----------
    who : str
        The caller, named in error messages.
    data : dict
        Must hold ``train_captions (N, T)``, ``train_image_idxs (N,)`` and
        ``train_features (I, D)``.

    Raises
    ------
    ValueError
        A key is missing, the captions and image indices differ in length or are empty, or
        an image index is not an integer row of ``train_features``.
    """
    for key in ("train_captions", "train_image_idxs", "train_features"):
        if key not in data:
            raise ValueError(f"{who}: data must hold train_captions, train_image_idxs and "
                             f"train_features; {key!r} is missing")
    if len(data["train_captions"]) != len(data["train_image_idxs"]):
        raise ValueError(f"{who}: {len(data['train_captions'])} train_captions but "
                         f"{len(data['train_image_idxs'])} train_image_idxs; they must match")
    if len(data["train_captions"]) == 0:
        raise ValueError(f"{who}: train_captions is empty")
    # Checked once here: a negative index would silently pick another image (NumPy wraps it)
    # and one past the end would stop training mid-epoch with a bare IndexError.
    idxs = np.asarray(data["train_image_idxs"])
    num_images = len(data["train_features"])
    if not np.issubdtype(idxs.dtype, np.integer):
        raise ValueError(f"{who}: train_image_idxs must hold integer rows of train_features, "
                         f"got dtype {idxs.dtype}; convert with .astype(np.int64)")
    if idxs.min() < 0 or idxs.max() >= num_images:
        bad = idxs[(idxs < 0) | (idxs >= num_images)]
        raise ValueError(f"{who}: train_image_idxs holds {bad.size} index(es) out of range, e.g. "
                         f"{bad[:5].tolist()}; each must be a row of train_features, "
                         f"0 <= index < {num_images}")


def run_epochs(solver, end_of_epoch=None):
    """The captioning solvers' loop: ``solver._step(t)`` for ``num_epochs`` epochs of
    ``max(N // batch_size, 1)`` minibatches, printing every ``print_every`` steps."""
    iterations_per_epoch = max(len(solver.data["train_captions"]) // solver.batch_size, 1)
    num_iterations = solver.num_epochs * iterations_per_epoch
    for t in range(num_iterations):
        solver._step(t)
        if solver.verbose and t % solver.print_every == 0:
            print(f"(Iteration {t + 1} / {num_iterations}) loss: {solver.loss_history[-1]:f}")
        if (t + 1) % iterations_per_epoch == 0:
            solver.epoch += 1
            if end_of_epoch is not None:
                end_of_epoch()
