"""``cs231n.classifiers``: the assignment-1 classifiers, as ``from cs231n.classifiers import Softmax``."""

from linear_classifiers.k_nearest_neighbor import KNearestNeighbor
from linear_classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax

__all__ = ["KNearestNeighbor", "LinearClassifier", "LinearSVM", "Softmax"]
