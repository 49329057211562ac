"""Assignment 1's two-layer net (the course's ``classifiers/neural_net.py``, 2016-2022).

Before the course moved it onto the ``Solver``, assignment 1 had its own two-layer net
that trains itself with SGD::

    net = TwoLayerNet(input_size=3072, hidden_size=50, output_size=10)
    stats = net.train(X_train, y_train, X_val, y_val, num_iters=1000, learning_rate=1e-4)
    val_acc = (net.predict(X_val) == y_val).mean()

Architecture: affine - relu - affine - softmax, on the toolkit's own layers. Unlike
``fully_connected_net.TwoLayerNet`` (assignment 2's, and assignment 1's since 2023) the
regularisation strength is an argument of ``loss`` and the penalty is
``reg * (sum(W1**2) + sum(W2**2))``, without the 1/2, as that notebook's numbers assume.
"""

import numpy as np

from .layer_utils import affine_relu_backward, affine_relu_forward
from .layers import affine_backward, affine_forward, softmax_loss
from .trainer import TrainingDivergedError
from .utils import generator


class TwoLayerNet:
    """Two-layer perceptron with its own SGD loop.

    Parameters
    ----------
    input_size : int, D
    hidden_size : int, H
    output_size : int, C
    std : float, weights start as ``std * N(0, 1)`` (drawn from NumPy's global stream,
        so ``np.random.seed`` reproduces them); biases at 0

    Attributes
    ----------
    params : dict, ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), float64
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
        for name, n in sizes.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"TwoLayerNet: {name} must be a positive integer, got {n!r}")
        self.params = {
            "W1": std * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": std * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }

    def loss(self, X, y=None, reg=0.0):
        """Scores, or the loss and its gradients.

        Parameters
        ----------
        X : ndarray, (N, D)
        y : ndarray of int, (N,), or None
        reg : float, the penalty is ``reg * (sum(W1**2) + sum(W2**2))``

        Returns
        -------
        scores : (N, C) when ``y`` is None; else ``(loss, grads)`` with ``grads`` keyed like ``params``
        """
        p = self.params
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != p["W1"].shape[0]:
            raise ValueError(f"TwoLayerNet: X must be (N, {p['W1'].shape[0]}), got shape {X.shape}")
        hidden, hidden_cache = affine_relu_forward(X, p["W1"], p["b1"])
        scores, scores_cache = affine_forward(hidden, p["W2"], p["b2"])
        if y is None:
            return scores
        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dhidden, dW2, db2 = affine_backward(dscores, scores_cache)
        _, dW1, db1 = affine_relu_backward(dhidden, hidden_cache)
        grads = {"W1": dW1 + 2 * reg * p["W1"], "b1": db1, "W2": dW2 + 2 * reg * p["W2"], "b2": db2}
        return loss, grads

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95, reg=5e-6,
              num_iters=100, batch_size=200, verbose=False, seed=None):
        """Minibatch SGD; once per epoch, accuracies are recorded and the learning rate decays.

        Parameters
        ----------
        X, y : training data (N, D) and labels (N,)
        X_val, y_val : validation data and labels
        learning_rate : float, the step ``params -= learning_rate * grads``
        learning_rate_decay : float, multiplies the learning rate after each epoch
        reg : float, passed to ``loss``
        num_iters : int, number of steps
        batch_size : int, samples per step, drawn with replacement
        verbose : bool, print the loss every 100 steps
        seed : int or None, seeds the minibatch sampling (not the course's); without one
            it follows ``np.random.seed``

        Returns
        -------
        stats : dict with ``loss_history`` (per step), ``train_acc_history`` (on the epoch's
            last minibatch) and ``val_acc_history`` (per epoch)
        """
        if isinstance(num_iters, bool) or not isinstance(num_iters, (int, np.integer)) or num_iters < 0:
            raise ValueError(f"train: num_iters must be an integer >= 0, got {num_iters!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"train: batch_size must be a positive integer, got {batch_size!r}")
        X = np.asarray(X)
        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)
        rng = generator(seed)
        stats = {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
        for it in range(num_iters):
            idx = rng.integers(num_train, size=batch_size)
            X_batch, y_batch = X[idx], np.asarray(y)[idx]
            loss, grads = self.loss(X_batch, y_batch, reg=reg)
            if not np.isfinite(loss):
                raise TrainingDivergedError(f"TwoLayerNet.train: the loss is {loss} at iteration {it + 1}; "
                                            f"lower learning_rate (now {learning_rate:g}) or std")
            stats["loss_history"].append(float(loss))
            for name in self.params:
                self.params[name] -= learning_rate * grads[name]
            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
            if it % iterations_per_epoch == 0:
                stats["train_acc_history"].append(float(np.mean(self.predict(X_batch) == y_batch)))
                stats["val_acc_history"].append(float(np.mean(self.predict(X_val) == np.asarray(y_val))))
                learning_rate *= learning_rate_decay
        return stats

    def predict(self, X):
        """Class labels (N,): the highest score of each row of X."""
        return np.argmax(self.loss(X), axis=1)
