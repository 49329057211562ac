"""``cs231n.simclr.model``: the SimCLR network (ResNet-18 encoder and projection head)."""

from deep_learning_suite.simclr import Model

__all__ = ["Model"]
