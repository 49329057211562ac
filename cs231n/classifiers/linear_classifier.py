"""``cs231n.classifiers.linear_classifier``."""

from linear_classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax

__all__ = ["LinearClassifier", "LinearSVM", "Softmax"]
