"""The course's import paths, served by this toolkit, so that CS231n notebooks run unchanged.

The assignments' notebooks import from a ``cs231n`` package next to them::

    from cs231n.classifiers.fc_net import *
    from cs231n.data_utils import get_CIFAR10_data
    from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
    from cs231n.solver import Solver

Each module here re-exports the toolkit's own functions and classes under the
course's module names (``cs231n.layers`` holds what the course keeps in one file:
layers, norms, dropout and the naive conv and pool). Nothing is copied, and only
``cs231n.data_utils.load_CIFAR_batch`` is wrapped (to return the course's float64 images):
``cs231n.layers.affine_forward is deep_learning_suite.layers.affine_forward``.

An assignment folder's own ``cs231n`` package, when it is on ``sys.path`` first
(a notebook run from inside that folder), is the one Python imports; run the
notebook from elsewhere to use the toolkit.
"""
