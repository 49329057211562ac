"""The basic classifiers of CS231n assignment 1: k-nearest neighbours and linear models.

This is the toolkit's root layer and needs only NumPy::

    from linear_classifiers import KNearestNeighbor, LinearSVM, Softmax
    from linear_classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
    from linear_classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized
    from linear_classifiers.features import hog_feature, color_histogram_hsv, extract_features

``python -m linear_classifiers`` trains all three on a dataset and prints a table.
"""

from .features import color_histogram_hsv, extract_features, hog_feature
from .k_nearest_neighbor import KNearestNeighbor, best_k, cross_validate_k
from .linear_classifier import LinearClassifier, LinearSVM, Softmax, TrainingDivergedWarning
from .linear_svm import svm_loss_naive, svm_loss_vectorized
from .softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "KNearestNeighbor",
    "cross_validate_k",
    "best_k",
    "LinearClassifier",
    "LinearSVM",
    "Softmax",
    "TrainingDivergedWarning",
    "svm_loss_naive",
    "svm_loss_vectorized",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "hog_feature",
    "color_histogram_hsv",
    "extract_features",
]
