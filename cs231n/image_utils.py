"""``cs231n.image_utils``: ``image_from_url``, which the captioning notebooks use to show images."""

from deep_learning_suite.plots import image_from_url

__all__ = ["image_from_url"]
