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

from ._validate import check_labels, check_real, check_reg, nonfinite_data_advice, nonfinite_rows
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
    dtype : floating dtype, default float64 (the course's); not in the course's signature.
        The weights are drawn in float64 and then cast, so a float32 net starts from the
        float64 net's weights rounded.

    Attributes
    ----------
    params : dict, ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), all of one dtype.
        That dtype decides the precision of ``loss``, ``train`` and ``predict``: inputs are
        cast to it, so converting the params (``{k: v.astype(np.float32) ...}``) after
        construction works as well as passing ``dtype``.
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, dtype=np.float64):
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
        for name, n in sizes.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"TwoLayerNet: {name} must be a positive integer, got {n!r}")
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            dtype = None
        if dtype is None or not np.issubdtype(dtype, np.floating):
            raise ValueError(f"TwoLayerNet: dtype must be a floating dtype such as np.float32 or "
                             f"np.float64, got {dtype!r}")
        # astype(copy=False) leaves the float64 default bit-identical to the course's draws.
        self.params = {
            "W1": (std * np.random.randn(input_size, hidden_size)).astype(dtype, copy=False),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": (std * np.random.randn(hidden_size, output_size)).astype(dtype, copy=False),
            "b2": np.zeros(output_size, dtype=dtype),
        }

    def loss(self, X, y=None, reg=0.0):
        """Scores, or the loss and its gradients.

        Parameters
        ----------
        X : ndarray, (N, D), cast to the dtype of ``params`` (float64 unless changed)
        y : ndarray of int, (N,), or None
        reg : float >= 0, the penalty is ``reg * (sum(W1**2) + sum(W2**2))``

        Returns
        -------
        scores : (N, C) when ``y`` is None; else ``(loss, grads)``: ``loss`` a scalar of the
            params' dtype, ``grads`` keyed like ``params`` and of their dtype
        """
        p = self.params
        reg = check_reg("loss", reg)
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != p["W1"].shape[0]:
            raise ValueError(f"TwoLayerNet: X must be (N, {p['W1'].shape[0]}), got shape {X.shape}")
        # The params' dtype, not float64, so that a float32 net computes in float32; the
        # layers refuse mixed dtypes rather than silently promoting.
        X = X.astype(p["W1"].dtype, copy=False)
        hidden, hidden_cache = affine_relu_forward(X, p["W1"], p["b1"])
        scores, scores_cache = affine_forward(hidden, p["W2"], p["b2"])
        if y is None:
            return scores
        data_loss, dscores = softmax_loss(scores, y)
        # reg is a Python float here, so it takes the params' dtype instead of promoting
        # a float32 loss (np.float64(5e-6) * float32 is float64 under NumPy 2's rules).
        loss = data_loss + reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dhidden, dW2, db2 = affine_backward(dscores, scores_cache)
        _, dW1, db1 = affine_relu_backward(dhidden, hidden_cache)
        grads = {"W1": dW1 + 2 * reg * p["W1"], "b1": db1, "W2": dW2 + 2 * reg * p["W2"], "b2": db2}
        return loss, grads

    def train(self, X, y, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95, reg=5e-6,
              num_iters=100, batch_size=200, verbose=False, seed=None):
        """Minibatch SGD; once per epoch, accuracies are recorded and the learning rate decays.

        With ``iterations_per_epoch = max(N // batch_size, 1)``, both happen after step ``it``
        (counted from 0) whenever ``it % iterations_per_epoch == 0``, as in the course's code:
        after the very first step, then after the first step of each later epoch, not at
        the end of an epoch. So the learning rate has already decayed once from the second
        step on, and ``ceil(num_iters / iterations_per_epoch)`` accuracies are recorded.

        Parameters
        ----------
        X, y : training data (N, D) and integer labels (N,), N >= 1
        X_val, y_val : validation data (M, D) and labels (M,)
        learning_rate : float >= 0, the step ``params -= learning_rate * grads``
        learning_rate_decay : float >= 0, multiplies the learning rate each time the
            accuracies are recorded (see above), the first time after step 0
        reg : float >= 0, passed to ``loss``
        num_iters : int, number of steps
        batch_size : int, samples per step, drawn with replacement
        verbose : bool, print the loss every 100 steps
        seed : int or None, seeds the minibatch sampling (not the course's); without one
            it follows ``np.random.seed``

        Returns
        -------
        stats : dict with ``loss_history`` (per step), ``train_acc_history`` (on the minibatch
            of each recording step, scored with the params that step updated) and
            ``val_acc_history`` (on all of ``X_val``, at the same steps)

        Raises
        ------
        ValueError
            For a learning rate, decay or reg that is not a finite number >= 0, or data and
            labels of different lengths, before any step changes ``params``.
        TrainingDivergedError
            When the loss stops being finite: ``params`` are then the last parameters whose
            loss was finite, and the error's ``stats`` attribute holds the stats so far. Its
            message blames the data when the failing minibatch holds NaN or inf (a feature
            divided by a zero std, say), the learning rate otherwise.
        """
        # Checked before the loop: a NaN rate would otherwise be applied to the params
        # (ruining them) before the divergence check sees the NaN loss one step later.
        learning_rate = check_real("train", "learning_rate", learning_rate, 0.0)
        learning_rate_decay = check_real("train", "learning_rate_decay", learning_rate_decay, 0.0)
        reg = check_reg("train", reg)
        if isinstance(num_iters, bool) or not isinstance(num_iters, (int, np.integer)) or num_iters < 0:
            raise ValueError(f"train: num_iters must be an integer >= 0, got {num_iters!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"train: batch_size must be a positive integer, got {batch_size!r}")
        D, C = self.params["W1"].shape[0], self.params["W2"].shape[1]
        X, X_val = np.asarray(X), np.asarray(X_val)
        for name, a in (("X", X), ("X_val", X_val)):
            if a.ndim != 2 or a.shape[1] != D:
                raise ValueError(f"train: {name} must be (N, {D}), got shape {a.shape}")
        # Up front: a short y would fail as an IndexError mid-run, a long one would be
        # silently truncated, a short y_val would fail to broadcast at the first epoch.
        y = check_labels(y, X.shape[0], C, name="y")
        y_val = check_labels(y_val, X_val.shape[0], C, name="y_val")
        num_train = X.shape[0]
        if num_train == 0 and num_iters > 0:
            raise ValueError("train: X holds no samples to draw minibatches from")
        iterations_per_epoch = max(num_train // batch_size, 1)
        rng = generator(seed)
        stats = {"loss_history": [], "train_acc_history": [], "val_acc_history": []}
        last_good = dict(self.params)   # the newest parameters whose loss was finite
        for it in range(num_iters):
            idx = rng.integers(num_train, size=batch_size)
            X_batch, y_batch = X[idx], y[idx]
            loss, grads = self.loss(X_batch, y_batch, reg=reg)
            if not np.isfinite(loss):
                self.params.update(last_good)
                raise self._diverged(loss, it, X_batch, idx, learning_rate, stats)
            stats["loss_history"].append(float(loss))
            last_good = dict(self.params)
            # New arrays, not in-place updates, so last_good stays intact.
            for name in self.params:
                self.params[name] = self.params[name] - learning_rate * grads[name]
            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
            if it % iterations_per_epoch == 0:
                stats["train_acc_history"].append(float(np.mean(self.predict(X_batch) == y_batch)))
                stats["val_acc_history"].append(float(np.mean(self.predict(X_val) == y_val)))
                learning_rate *= learning_rate_decay
        return stats

    @staticmethod
    def _diverged(loss, it, X_batch, idx, learning_rate, stats):
        """The ``TrainingDivergedError`` for a non-finite loss, blaming the data when the
        minibatch holds NaN or inf (looked at only now, so finite data costs nothing)."""
        bad = np.unique(idx[nonfinite_rows(X_batch)])
        what = f"TwoLayerNet.train: the loss is {loss} at iteration {it + 1}"
        kept = "training stopped and params hold the last parameters with a finite loss"
        if bad.size:
            error = TrainingDivergedError(f"{what}: X holds NaN/inf in rows {bad[:5].tolist()}; {kept}; "
                                          f"{nonfinite_data_advice('X')}")
        else:
            error = TrainingDivergedError(f"{what}; {kept}: lower learning_rate (now {learning_rate:g}) or std")
        error.stats = stats
        return error

    def predict(self, X):
        """Class labels (N,): the highest score of each row of X."""
        return np.argmax(self.loss(X), axis=1)
