"""``cs231n.classifiers.rnn``; like the course's file, ``import *`` also brings the RNN layers."""

from deep_learning_suite.captioning_rnn import CaptioningRNN

from .. import rnn_layers
from ..rnn_layers import *  # noqa: F401,F403

__all__ = ["CaptioningRNN"] + rnn_layers.__all__
