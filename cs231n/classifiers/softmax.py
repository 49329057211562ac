"""``cs231n.classifiers.softmax``."""

from linear_classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = ["softmax_loss_naive", "softmax_loss_vectorized"]
