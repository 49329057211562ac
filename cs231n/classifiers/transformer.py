"""``cs231n.classifiers.transformer``: the ``CaptioningTransformer``, the ``VisionTransformer``
and their decoder and encoder stacks (PyTorch)."""

from deep_learning_suite.captioning_transformer import CaptioningTransformer
from deep_learning_suite.transformer_layers import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from deep_learning_suite.vit import VisionTransformer

__all__ = ["CaptioningTransformer", "VisionTransformer", "TransformerDecoderLayer", "TransformerDecoder",
           "TransformerEncoderLayer", "TransformerEncoder"]
