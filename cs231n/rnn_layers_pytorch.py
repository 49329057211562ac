"""``cs231n.rnn_layers_pytorch``: the recurrent layers of assignment 2, in PyTorch (2025 edition)."""

from deep_learning_suite.rnn_layers_pytorch import (
    affine_forward,
    lstm_forward,
    lstm_step_forward,
    rnn_forward,
    rnn_step_forward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_forward,
)

__all__ = [
    "affine_forward", "rnn_step_forward", "rnn_forward", "word_embedding_forward",
    "lstm_step_forward", "lstm_forward", "temporal_affine_forward", "temporal_softmax_loss",
]
