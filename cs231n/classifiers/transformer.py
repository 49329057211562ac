"""``cs231n.classifiers.transformer``: the ``CaptioningTransformer`` and its decoder (PyTorch)."""

from deep_learning_suite.captioning_transformer import CaptioningTransformer
from deep_learning_suite.transformer_layers import TransformerDecoder, TransformerDecoderLayer

__all__ = ["CaptioningTransformer", "TransformerDecoderLayer", "TransformerDecoder"]
