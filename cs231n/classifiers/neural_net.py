"""``cs231n.classifiers.neural_net``: assignment 1's two-layer net with its own ``train`` (2016-2022)."""

from deep_learning_suite.neural_net import TwoLayerNet

__all__ = ["TwoLayerNet"]
