"""CS231n Toolkit: deep learning from scratch in NumPy.

One module per topic, in the layout of Stanford's CS231n assignments::

    from deep_learning_suite.fully_connected_net import FullyConnectedNet
    from deep_learning_suite.trainer import Solver

Layout is NCHW everywhere; every ``*_forward`` returns ``(out, cache)`` and every
``*_backward(dout, cache)`` returns the gradients of the forward's array inputs.
"""

__version__ = "0.1.0"
