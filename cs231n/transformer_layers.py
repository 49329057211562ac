"""``cs231n.transformer_layers``: positional encoding and multi-head attention (PyTorch)."""

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from deep_learning_suite.transformer_layers import (
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
)

# The course's file opens with these four imports and has no __all__, so its star import hands
# them on, and the Transformer_Captioning notebook relies on that: its setup cell never imports
# torch, yet its cells call torch.manual_seed and torch.randn.
__all__ = ["PositionalEncoding", "MultiHeadAttention", "TransformerDecoderLayer", "TransformerDecoder",
           "torch", "nn", "F", "math"]
