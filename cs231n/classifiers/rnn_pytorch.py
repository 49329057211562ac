"""``cs231n.classifiers.rnn_pytorch``; like the course's file, ``import *`` also brings the
PyTorch RNN layers."""

from deep_learning_suite.captioning_rnn_pytorch import CaptioningRNN

from .. import rnn_layers_pytorch
from ..rnn_layers_pytorch import *  # noqa: F401,F403

__all__ = ["CaptioningRNN"] + rnn_layers_pytorch.__all__
