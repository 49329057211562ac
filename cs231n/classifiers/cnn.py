"""``cs231n.classifiers.cnn``; like the course's file, ``import *`` also brings the layers."""

from deep_learning_suite.cnn_model import ThreeLayerConvNet

from .. import layer_utils
from ..layer_utils import *  # noqa: F401,F403

__all__ = ["ThreeLayerConvNet"] + layer_utils.__all__
