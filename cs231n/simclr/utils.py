"""``cs231n.simclr.utils``: the contrastive training loop, linear evaluation and the kNN monitor."""

from deep_learning_suite.simclr import test, train, train_val

__all__ = ["train", "train_val", "test"]
