"""Linear classifiers ``scores = X @ W`` trained by minibatch stochastic gradient descent.

Append a column of ones to ``X`` to learn a bias: it then lives in the last row of ``W``.
"""

import numbers
import warnings

import numpy as np

from deep_learning_suite._validate import check_labels, nonfinite_data_advice, nonfinite_rows
from deep_learning_suite.saved_params import load_params, save_params
from deep_learning_suite.utils import generator

from ._checks import check_class_labels, check_features, check_positive_int, check_reg
from .linear_svm import svm_loss_vectorized
from .softmax import softmax_loss_vectorized


class TrainingDivergedWarning(RuntimeWarning):
    """``LinearClassifier.train`` stopped early because the loss became NaN or infinite."""


class LinearClassifier:
    """Base class: minibatch SGD on ``self.loss``; subclasses choose the loss.

    Attributes
    ----------
    W : ndarray (D, C) or None
        The weights; created on the first ``train`` call as ``0.001 * randn(D, C)`` with
        ``C = y.max() + 1``, and kept (training continues) on later calls.
    """

    def __init__(self):
        self.W = None

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200,
              verbose=False, seed=None):
        """Train with minibatch stochastic gradient descent.

        Parameters
        ----------
        X : ndarray, (N, D) float training data
        y : ndarray of int, (N,) labels, 0 <= y[i] < C
        learning_rate : float, step size of each update ``W -= learning_rate * dW``
        reg : float, regularisation strength (penalty ``reg * sum(W**2)``)
        num_iters : int, number of SGD steps
        batch_size : int, samples per step, drawn with replacement
        verbose : bool, print the loss every 100 iterations
        seed : int or None, seeds the weight initialisation and the minibatch sampling
            (not part of the CS231n API); without one both follow ``np.random.seed``, as in the course

        Returns
        -------
        loss_history : list of float, the minibatch loss at each iteration

        Warns
        -----
        TrainingDivergedWarning
            The loss or gradient became NaN or infinite (learning rate or reg too high, or
            NaN/inf in ``X``, which the message then names): training stops there, ``W`` is
            the last weights whose loss was finite and ``loss_history`` ends with that loss.
            Turn it into an error with ``warnings.simplefilter("error", TrainingDivergedWarning)``.
        """
        X = check_features("X", X)
        num_train, dim = X.shape
        if num_train == 0:
            raise ValueError("train: X is empty (N = 0)")
        if self.W is None:
            y = check_class_labels(y, num_train)
        else:
            if self.W.shape[0] != dim:
                raise ValueError(
                    f"train: X has shape {X.shape} but the existing W has shape {self.W.shape}; "
                    f"X must have {self.W.shape[0]} columns to continue training"
                )
            y = check_labels(y, num_train, self.W.shape[1])
        if not isinstance(learning_rate, numbers.Real) or not np.isfinite(learning_rate) or learning_rate < 0:
            raise ValueError(f"train: learning_rate must be a finite number >= 0, got {learning_rate!r}")
        check_reg(reg, "train")
        if isinstance(num_iters, bool) or not isinstance(num_iters, numbers.Integral) or num_iters < 0:
            raise ValueError(f"train: num_iters must be an integer >= 0, got {num_iters!r}")
        batch_size = check_positive_int("batch_size", batch_size, "train")

        rng = generator(seed)
        if self.W is None:
            self.W = (0.001 * rng.standard_normal((dim, int(y.max()) + 1))).astype(X.dtype)

        loss_history = []
        last_good = self.W  # the newest weights whose loss was finite
        for it in range(num_iters):
            # Sampling with replacement is cheaper than a permutation and allows batch_size > N.
            idx = rng.integers(num_train, size=batch_size)
            X_batch = X[idx]
            loss, grad = self.loss(X_batch, y[idx], reg)
            if not (np.isfinite(loss) and np.isfinite(grad).all()):
                # A warning, not an error: a hyperparameter sweep (the course's grid has a
                # diverging corner) must go on to its other settings.
                self.W = last_good
                stopped = (f"the loss became {float(loss)} at iteration {it} of {num_iters}; training "
                           f"stopped there and W is the last weights with a finite loss")
                # The data is looked at only now, in the failing batch, so finite data costs nothing.
                bad = np.unique(idx[nonfinite_rows(X_batch)])
                if bad.size:
                    message = (f"train: X holds NaN/inf in rows {bad[:5].tolist()}, so {stopped}; "
                               f"{nonfinite_data_advice('X')}")
                else:
                    message = (f"train: {stopped} (learning_rate={learning_rate:g}, reg={reg:g}). "
                               f"Lower the learning rate (or reg)")
                warnings.warn(message, TrainingDivergedWarning, stacklevel=2)
                break
            loss_history.append(float(loss))
            last_good = self.W
            # A new array, not an in-place update, so last_good stays intact.
            self.W = self.W - (learning_rate * grad).astype(self.W.dtype, copy=False)
            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {float(loss):f}")
        return loss_history

    def predict(self, X):
        """Predict labels as the highest-scoring class.

        Parameters
        ----------
        X : ndarray, (N, D), preprocessed like the training data

        Returns
        -------
        y_pred : ndarray of int64, (N,)
        """
        if self.W is None:
            raise RuntimeError(f"{type(self).__name__} is not trained: call train(X, y) before predict(X)")
        X = check_features("X", X, self.W.shape[0])
        return np.argmax(X @ self.W, axis=1).astype(np.int64)

    def save(self, fname):
        """Save ``W`` as ``{"W": W}`` to ``fname``, as the course's ``save`` does, without pickle.

        Parameters
        ----------
        fname : str or os.PathLike
            A bare name goes into ``./cs231n/saved/`` in the course's layout (an assignment's
            ``cs231n/`` folder in the working directory), else ``./saved/`` (created when
            missing); a path with a directory part is used as given. The name is kept exactly. See ``saved_params.save_params``.

        Prints ``"<fname> saved."``. The file is written atomically.

        Raises
        ------
        RuntimeError
            The model has no weights yet (train it first).
        """
        if self.W is None:
            raise RuntimeError(f"{type(self).__name__} is not trained: call train(X, y) before "
                               f"save({fname!r}); there are no weights to save")
        save_params(fname, {"W": self.W})
        print(f"{fname} saved.")

    def load(self, fname):
        """Load ``W`` saved by ``save`` (or by the course's own code) from ``fname``.

        Parameters
        ----------
        fname : str or os.PathLike
            As given to ``save``.

        Returns
        -------
        bool
            True after printing ``"<fname> loaded."``; False after printing
            ``"<fname> not available."`` when there is no such file (``W`` is left unchanged).
            ``W`` takes the file's (D, C) shape and dtype, replacing any current weights.

        Raises
        ------
        ValueError
            The file is corrupt or hostile (``saved_params.SavedParamsError``), or does not hold
            exactly one parameter ``W``, a 2-D floating-point array.
        """
        try:
            params = load_params(fname)
        except FileNotFoundError:
            print(f"{fname} not available.")
            return False
        if set(params) != {"W"}:
            raise ValueError(f"{type(self).__name__}.load({fname!r}): a linear classifier's file "
                             f"holds exactly one parameter 'W', this one has {sorted(params)}")
        W = params["W"]
        # Integer weights would truncate every SGD step; the course always saves float weights.
        if W.ndim != 2 or W.dtype.kind != "f":
            raise ValueError(f"{type(self).__name__}.load({fname!r}): 'W' must be a 2-D "
                             f"floating-point (D, C) array, got shape {W.shape} dtype {W.dtype}")
        self.W = W
        print(f"{fname} loaded.")
        return True

    def loss(self, X_batch, y_batch, reg):
        """Loss and gradient on a minibatch.

        Parameters
        ----------
        X_batch : ndarray, (N, D);  y_batch : ndarray of int, (N,);  reg : float

        Returns
        -------
        loss : float;  dW : ndarray shaped like ``self.W``
        """
        raise NotImplementedError("use a subclass (LinearSVM, Softmax) or override loss()")


class LinearSVM(LinearClassifier):
    """Linear classifier trained with the multiclass SVM (hinge) loss."""

    def loss(self, X_batch, y_batch, reg):
        return svm_loss_vectorized(self.W, X_batch, y_batch, reg)


class Softmax(LinearClassifier):
    """Linear classifier trained with the softmax cross-entropy loss."""

    def loss(self, X_batch, y_batch, reg):
        return softmax_loss_vectorized(self.W, X_batch, y_batch, reg)
