"""``cs231n.classifiers.linear_svm``."""

from linear_classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized

__all__ = ["svm_loss_naive", "svm_loss_vectorized"]
