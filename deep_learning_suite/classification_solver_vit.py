"""``ClassificationSolverViT``: trains an image classifier, such as the
:class:`~deep_learning_suite.vit.VisionTransformer`, with Adam and cross-entropy (the 2025
CS231n assignment 3).

Usage, as in ``Transformer_Captioning.ipynb``::

    solver = ClassificationSolverViT(train_data=train_data, test_data=test_data, model=model,
                                     num_epochs=2, learning_rate=1e-4, weight_decay=0.0,
                                     batch_size=64)
    solver.train('cuda' if torch.cuda.is_available() else 'cpu')
    solver.results['best_test_acc']

Each epoch is one pass over ``train_data`` in shuffled minibatches, then one over
``test_data``, with :func:`deep_learning_suite.simclr.train_val` (the course's loop: a
progress bar per pass, and a NaN or infinite loss stops the run before its step).
"""

import torch
import torch.nn as nn

from ._validate import check_int, check_real
from .captioning_solver_pytorch import _positive
from .simclr import train_val

_OPTIONS = {"learning_rate": 1e-4, "weight_decay": 0.0, "batch_size": 64, "num_epochs": 2,
            "verbose": True, "seed": None}


def _check_dataset(who, name, data):
    # A map-style dataset, as DataLoader(shuffle=True) needs; checked here, where an empty one
    # would otherwise surface as "data_loader yielded no batches" after a training epoch.
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise ValueError(f"{who}: {name} must be a dataset of (image, label) pairs with __len__ and "
                         f"__getitem__ (e.g. torchvision's CIFAR10 or torch.utils.data.TensorDataset), "
                         f"got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{who}: {name} is empty")


class ClassificationSolverViT:
    """Train ``model`` on ``train_data`` with ``torch.optim.Adam``, testing after each epoch.

    Parameters
    ----------
    train_data, test_data : datasets of ``(image (C, H, W), label)`` pairs
        Map-style and non-empty, e.g. ``CIFAR10(..., transform=transforms.ToTensor())``.
    model : nn.Module
        Maps images (N, C, H, W) to class scores (N, num_classes).
    learning_rate : float, default 1e-4
        Positive.
    weight_decay : float, default 0.0
        Adam's L2 penalty; non-negative.
    batch_size : int, default 64
        Positive; a whole-number float such as 64.0 is taken as its int.
    num_epochs : int, default 2
        Non-negative.
    verbose : bool, default True
        Show the progress bars, with the running loss and accuracy.
    seed : int, optional
        Seeds the shuffling of ``train_data``; None follows ``torch.manual_seed``, as in the
        course. Dropout follows ``torch.manual_seed`` either way.

    Attributes
    ----------
    optimizer : torch.optim.Adam
    loss_criterion : nn.CrossEntropyLoss, the course's attribute (the loop's loss is the same)
    epoch : int, epochs completed
    results : dict
        ``'train_loss'``, ``'train_acc@1'``, ``'test_loss'``, ``'test_acc@1'``: one entry per
        epoch (mean cross-entropy, and top-1 accuracy as a fraction in [0, 1]); after
        ``train``, ``'best_test_acc'``, the highest test accuracy of any epoch so far.

    Raises
    ------
    ValueError
        An unknown option, an option of the wrong kind, a model that is not an ``nn.Module``,
        or a dataset that is not one or is empty.
    """

    def __init__(self, train_data, test_data, model, **kwargs):
        who = "ClassificationSolverViT"
        unknown = sorted(set(kwargs) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{who}: unrecognized option(s) {unknown}; valid options are "
                             f"{sorted(_OPTIONS)}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}")
        _check_dataset(who, "train_data", train_data)
        _check_dataset(who, "test_data", test_data)
        opts = {**_OPTIONS, **kwargs}
        self.model, self.train_data, self.test_data = model, train_data, test_data
        self.learning_rate = _positive(who, "learning_rate", opts["learning_rate"])
        self.weight_decay = check_real(who, "weight_decay", opts["weight_decay"], 0.0)
        self.batch_size = check_int(who, "batch_size", opts["batch_size"], 1)
        self.num_epochs = check_int(who, "num_epochs", opts["num_epochs"], 0)
        self.verbose = bool(opts["verbose"])
        self._shuffle = None
        if opts["seed"] is not None:
            self._shuffle = torch.Generator().manual_seed(check_int(who, "seed", opts["seed"], 0))
        self.optimizer = torch.optim.Adam(self.model.parameters(), self.learning_rate,
                                          weight_decay=self.weight_decay)
        self.loss_criterion = nn.CrossEntropyLoss()
        self._reset()

    def _reset(self):
        self.epoch = 0
        self.results = {"train_loss": [], "train_acc@1": [], "test_loss": [], "test_acc@1": []}

    def train(self, device="cpu"):
        """Run ``num_epochs`` epochs on ``device``; the model is moved there and left in
        evaluation mode after the last test pass.

        Raises
        ------
        TrainingDivergedError
            The loss of a batch is NaN or infinite (before that step is taken).
        """
        train_loader = torch.utils.data.DataLoader(self.train_data, batch_size=self.batch_size,
                                                   shuffle=True, generator=self._shuffle)
        test_loader = torch.utils.data.DataLoader(self.test_data, batch_size=self.batch_size)
        self.model.to(device)
        last = self.epoch + self.num_epochs
        for epoch in range(self.epoch + 1, last + 1):
            for split, loader, optimizer in (("train", train_loader, self.optimizer),
                                             ("test", test_loader, None)):
                # train_val gives accuracies in percent, as SimCLR's notebook prints them; the
                # course's ViT solver keeps fractions (its target is "0.45").
                loss, acc, _ = train_val(self.model, loader, optimizer, epoch, last, device=device,
                                         progress=self.verbose)
                self.results[f"{split}_loss"].append(loss)
                self.results[f"{split}_acc@1"].append(acc / 100)
            self.epoch = epoch
        self.results["best_test_acc"] = max(self.results["test_acc@1"], default=0.0)
