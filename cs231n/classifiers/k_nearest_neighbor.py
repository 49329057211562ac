"""``cs231n.classifiers.k_nearest_neighbor``."""

from linear_classifiers.k_nearest_neighbor import KNearestNeighbor

__all__ = ["KNearestNeighbor"]
