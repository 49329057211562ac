"""``cs231n.image_utils``: ImageNet normalisation, image loading, and ``image_from_url``."""

from deep_learning_suite.imagenet import (
    SQUEEZENET_MEAN,
    SQUEEZENET_STD,
    deprocess_image,
    load_image,
    preprocess_image,
)
from deep_learning_suite.plots import image_from_url

__all__ = ["SQUEEZENET_MEAN", "SQUEEZENET_STD", "deprocess_image", "image_from_url", "load_image",
           "preprocess_image"]
