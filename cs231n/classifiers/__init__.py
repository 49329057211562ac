"""``cs231n.classifiers``: the assignment-1 classifiers, as ``from cs231n.classifiers import Softmax``.

Like the course's package, it also exports the linear losses its modules import.
"""

from linear_classifiers.k_nearest_neighbor import KNearestNeighbor
from linear_classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax
from linear_classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
from linear_classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = ["KNearestNeighbor", "LinearClassifier", "LinearSVM", "Softmax",
           "svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive", "softmax_loss_vectorized"]
