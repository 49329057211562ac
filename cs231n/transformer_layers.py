"""``cs231n.transformer_layers``: positional encoding, multi-head attention, the GELU feed-forward
block, decoder and encoder layers, and the ViT's patch embedding (PyTorch)."""

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from deep_learning_suite.transformer_layers import (
    FeedForwardNetwork,
    MultiHeadAttention,
    PatchEmbedding,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

# The course's file opens with these four imports and has no __all__, so its star import hands
# them on, and the Transformer_Captioning notebook relies on that: its setup cell never imports
# torch, yet its cells call torch.manual_seed and torch.randn.
__all__ = ["PositionalEncoding", "MultiHeadAttention", "FeedForwardNetwork", "TransformerDecoderLayer",
           "PatchEmbedding", "TransformerEncoderLayer", "TransformerDecoder", "TransformerEncoder",
           "torch", "nn", "F", "math"]
