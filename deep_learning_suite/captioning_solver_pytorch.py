"""``CaptioningSolverPytorch``: trains the PyTorch ``CaptioningRNN`` with Adam (CS231n 2025).

The model is anything with ``params``, a dict of tensors, and ``loss(features, captions)``
returning a scalar tensor, such as
:class:`~deep_learning_suite.captioning_rnn_pytorch.CaptioningRNN`. Data is the dict of
:func:`~deep_learning_suite.coco.load_coco_data` (``train_captions``, ``train_image_idxs``,
``train_features``).

Usage, as in ``RNN_Captioning_pytorch.ipynb``::

    solver = CaptioningSolverPytorch(model, data, num_epochs=50, batch_size=25,
                                     learning_rate=5e-3, verbose=True, print_every=10)
    solver.train()
    solver.loss_history

``torch.optim.Adam`` updates ``model.params.values()`` in place. ``train()`` switches their
``requires_grad`` on for the run and off again after, as the course's solver does, so that the
notebook's later cells (``model.loss(...).numpy()``, sampling) see plain tensors.

The NumPy :class:`~deep_learning_suite.captioning_solver.CaptioningSolver`'s spelling is also
accepted, so that an older notebook's cell runs unchanged: ``update_rule='adam'``,
``optim_config={'learning_rate': ..., 'beta1': ..., 'beta2': ..., 'epsilon': ...}`` and
``lr_decay`` (the learning rate is multiplied by it after every epoch).
"""

import math

import numpy as np
import torch

from ._validate import check_int
from .captioning_solver import check_caption_data, run_epochs
from .coco import sample_coco_minibatch
from .trainer import TrainingDivergedError
from .utils import generator

_OPTIONS = {"learning_rate": None, "batch_size": 100, "num_epochs": 10, "print_every": 10,
            "verbose": True, "update_rule": "adam", "optim_config": None, "lr_decay": 1.0,
            "seed": None}
_DEFAULT_LR = 1e-3
# The NumPy adam's config names and torch.optim.Adam's defaults, which are the same numbers.
_ADAM_CONFIG = {"learning_rate": _DEFAULT_LR, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}


def _positive(what, name, value):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what}: {name} must be a positive number, got {value!r}")
    return float(value)


class CaptioningSolverPytorch:
    """Train ``model`` on the captions of ``data`` with ``torch.optim.Adam``.

    Parameters
    ----------
    model : object with ``params`` (dict of float tensors) and ``loss(features, captions)``
    data : dict with ``train_captions (N, T)``, ``train_image_idxs (N,)``, ``train_features``
    learning_rate : float, default 1e-3
    batch_size : int, default 100
    num_epochs : int, default 10
        An epoch is ``max(N // batch_size, 1)`` minibatches.
    print_every : int, default 10
    verbose : bool, default True
    update_rule : 'adam', optional
        Accepted for the NumPy solver's calls; Adam is the only rule.
    optim_config : dict, optional
        ``learning_rate``, ``beta1``, ``beta2``, ``epsilon``, as the NumPy ``adam`` takes them.
    lr_decay : float, default 1.0
        The learning rate is multiplied by this after every epoch.
    seed : int, optional
        Seeds the minibatch draws; None follows ``np.random.seed``, as in the course.

    Attributes
    ----------
    loss_history : list of float, one loss per minibatch
    optim : torch.optim.Adam
    epoch : int, epochs completed
    """

    def __init__(self, model, data, **kwargs):
        who = "CaptioningSolverPytorch"
        unknown = sorted(set(kwargs) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{who}: unrecognized option(s) {unknown}; valid options are "
                             f"{sorted(_OPTIONS)}")
        check_caption_data(who, data)
        params = getattr(model, "params", None)
        if not isinstance(params, dict) or not params:
            raise ValueError(f"{who}: model must have a non-empty params dict of tensors")
        opts = {**_OPTIONS, **kwargs}
        if opts["update_rule"] != "adam":
            raise ValueError(f"{who}: update_rule must be 'adam' (it trains with torch.optim.Adam), "
                             f"got {opts['update_rule']!r}")
        config = dict(opts["optim_config"] or {})
        bad = sorted(set(config) - set(_ADAM_CONFIG))
        if bad:
            raise ValueError(f"{who}: optim_config takes {sorted(_ADAM_CONFIG)}, got {bad}")
        lr = opts["learning_rate"]
        if lr is not None and "learning_rate" in config and config["learning_rate"] != lr:
            raise ValueError(f"{who}: learning_rate={lr} and optim_config['learning_rate']="
                             f"{config['learning_rate']} disagree; give one of them")
        config = {**_ADAM_CONFIG, **config, **({} if lr is None else {"learning_rate": lr})}
        self.learning_rate = _positive(who, "learning_rate", config["learning_rate"])
        self.betas = (float(config["beta1"]), float(config["beta2"]))
        self.eps = _positive(who, "optim_config['epsilon']", config["epsilon"])
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"{who}: beta1 and beta2 must be in [0, 1), got {self.betas}")
        self.lr_decay = _positive(who, "lr_decay", opts["lr_decay"])
        self.batch_size = check_int(who, "batch_size", opts["batch_size"], 1)
        self.num_epochs = check_int(who, "num_epochs", opts["num_epochs"], 0)
        self.print_every = check_int(who, "print_every", opts["print_every"], 1)
        self.verbose = bool(opts["verbose"])
        self.update_rule = "adam"
        self.model, self.data = model, data
        self.rng = generator(opts["seed"])
        self.epoch = 0
        self.loss_history = []
        self._build_optimizer(self.learning_rate)

    def _params(self):
        params = list(self.model.params.values())
        for name, v in self.model.params.items():
            if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point:
                raise ValueError(f"CaptioningSolverPytorch: model.params[{name!r}] must be a "
                                 f"floating-point tensor, got {type(v).__name__}"
                                 + (f" of {v.dtype}" if isinstance(v, torch.Tensor) else ""))
            if not v.is_leaf:
                raise ValueError(f"CaptioningSolverPytorch: model.params[{name!r}] is computed "
                                 f"from other tensors; Adam can only update a leaf tensor: "
                                 f"store v.detach() instead")
        return params

    def _build_optimizer(self, lr):
        params = self._params()
        self.optim = torch.optim.Adam(params, lr=lr, betas=self.betas, eps=self.eps)
        self._param_ids = [id(v) for v in params]

    def _step(self, t):
        captions, features, _ = sample_coco_minibatch(self.data, self.batch_size, "train", self.rng)
        captions = torch.from_numpy(np.asarray(captions)).long()
        features = torch.from_numpy(np.asarray(features))
        loss = self.model.loss(features, captions)      # the model moves them to its device
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"loss is {loss.item()} at iteration {t + 1} (epoch {self.epoch + 1} of "
                f"{self.num_epochs}); training stopped before that update. Lower the learning "
                f"rate (now {self.optim.param_groups[0]['lr']}).")
        self.loss_history.append(loss.item())
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()

    def _decay_learning_rate(self):
        for group in self.optim.param_groups:
            group["lr"] *= self.lr_decay

    def train(self):
        """Run the optimisation; ``loss_history`` gets one loss per minibatch.

        If ``model.params`` was given new tensors since the solver was made (the notebook
        assigns them), Adam is rebuilt over the new ones, with a fresh state.
        """
        params = self._params()
        if [id(v) for v in params] != self._param_ids:
            self._build_optimizer(self.optim.param_groups[0]["lr"])
        for v in params:
            v.requires_grad_(True)
        try:
            run_epochs(self, end_of_epoch=self._decay_learning_rate)
        finally:
            for v in params:
                v.requires_grad_(False)
