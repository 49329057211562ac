"""``cs231n.classifiers.fc_net``; like the course's file, ``import *`` also brings the layers."""

from deep_learning_suite.fully_connected_net import FullyConnectedNet, TwoLayerNet

from .. import layer_utils
from ..layer_utils import *  # noqa: F401,F403

__all__ = ["FullyConnectedNet", "TwoLayerNet"] + layer_utils.__all__
