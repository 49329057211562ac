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

from .coco import sample_coco_minibatch
from .trainer import TrainingDivergedError, get_update_rule
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
        ``learning_rate`` is multiplied by this after every epoch.
    batch_size : int, default 100
    num_epochs : int, default 10
        An epoch is ``max(N // batch_size, 1)`` minibatches.
    print_every : int, default 10
    verbose : bool, default True
    seed : int, optional
        Seeds the minibatch draws; None follows ``np.random.seed``.
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
        self.optim_config = dict(opts["optim_config"] or {})
        self.lr_decay = opts["lr_decay"]
        self.batch_size = int(opts["batch_size"])
        self.num_epochs = int(opts["num_epochs"])
        self.print_every = opts["print_every"]
        self.verbose = opts["verbose"]
        self.seed = opts["seed"]
        if self.batch_size <= 0 or self.num_epochs < 0:
            raise ValueError(f"CaptioningSolver: batch_size must be positive and num_epochs "
                             f"non-negative, got {self.batch_size} and {self.num_epochs}")
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
                config["learning_rate"] *= self.lr_decay


def check_caption_data(who, data):
    """Require the training arrays a captioning solver draws its minibatches from."""
    for key in ("train_captions", "train_image_idxs", "train_features"):
        if key not in data:
            raise ValueError(f"{who}: data must hold train_captions, train_image_idxs and "
                             f"train_features; {key!r} is missing")
    if len(data["train_captions"]) != len(data["train_image_idxs"]):
        raise ValueError(f"{who}: {len(data['train_captions'])} train_captions but "
                         f"{len(data['train_image_idxs'])} train_image_idxs; they must match")
    if len(data["train_captions"]) == 0:
        raise ValueError(f"{who}: train_captions is empty")


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
