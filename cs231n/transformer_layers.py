"""``cs231n.transformer_layers``: positional encoding and multi-head attention (PyTorch)."""

from deep_learning_suite.transformer_layers import (
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
)

__all__ = ["PositionalEncoding", "MultiHeadAttention", "TransformerDecoderLayer", "TransformerDecoder"]
