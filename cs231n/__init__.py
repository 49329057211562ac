"""The course's import paths, served by this toolkit, so that CS231n notebooks run unchanged.

The assignments' notebooks import from a ``cs231n`` package next to them::

    from cs231n.classifiers.fc_net import *
    from cs231n.data_utils import get_CIFAR10_data
    from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
    from cs231n.solver import Solver

Each module here re-exports the toolkit's own functions and classes under the
course's module names (``cs231n.layers`` holds what the course keeps in one file:
layers, norms, dropout and the naive conv and pool), and nothing is copied:
``cs231n.layers.affine_forward is deep_learning_suite.layers.affine_forward``. Two names are
the exceptions: ``cs231n.data_utils.load_CIFAR_batch`` wraps the toolkit's (to return the
course's float64 images), and ``cs231n.image_utils.blur_image``, the older course's NumPy
blur with no toolkit module of its own, is written there.

An assignment folder's own ``cs231n`` package, when it is on ``sys.path`` first
(a notebook run from inside that folder), is the one Python imports; run the
notebook from elsewhere to use the toolkit.
"""
