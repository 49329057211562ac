"""``cs231n.style_transfer_pytorch``: the StyleTransfer notebook's losses, feature extraction and
optimisation loop (PyTorch)."""

from deep_learning_suite.style_transfer import (
    content_loss,
    extract_features,
    features_from_img,
    gram_matrix,
    style_loss,
    style_transfer,
    tv_loss,
)
from deep_learning_suite.utils import rel_error

__all__ = [
    "content_loss", "extract_features", "features_from_img", "gram_matrix", "rel_error", "style_loss",
    "style_transfer", "tv_loss",
]
