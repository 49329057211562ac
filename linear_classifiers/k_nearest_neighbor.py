"""k-nearest-neighbour classifier with L2 distance, and k chosen by cross-validation.

The three ``compute_distances_*`` methods return the same matrix; they exist to show
(and benchmark) what vectorisation buys: the no-loop version is one matrix product.
"""

import numpy as np

from deep_learning_suite._validate import check_ndim, nonfinite_data_advice, nonfinite_rows

from ._checks import check_class_labels, check_positive_int

# predict() bounds the distance matrix it holds at once to this many entries (128 MiB in float64).
MAX_DISTANCES_PER_CHUNK = 2**24


def _as_features(name, X, num_features=None):
    """Return ``X`` as a 2-D float array of finite values; integer pixels become float64.

    Integers are converted (rather than rejected) because raw uint8 images are the
    natural input to kNN, and ``a - b`` on uint8 would silently wrap around. NaN or inf
    is refused: its distances are NaN, and one such training row makes the centring mean,
    so every no-loop distance, NaN, with predictions that look fine.
    """
    X = np.asarray(X)
    if X.dtype == bool or np.issubdtype(X.dtype, np.integer):
        X = X.astype(np.float64)
    elif not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    check_ndim(name, X, 2, "(N, D): one flattened sample per row")
    if num_features is not None and X.shape[1] != num_features:
        raise ValueError(
            f"{name} has shape {X.shape} but the training data has D = {num_features} "
            f"features; pass ({X.shape[0]}, {num_features}), preprocessed like the training data"
        )
    bad = nonfinite_rows(X)
    if bad.size:
        raise ValueError(f"{name} holds NaN or inf in {bad.size} row(s), e.g. rows {bad[:5].tolist()}: "
                         f"kNN has no distance to them; {nonfinite_data_advice(name)}")
    return X


def _frozen_copy(features, original):
    """``features`` (from ``_as_features(original)``), read-only and sharing no memory with ``original``."""
    if np.may_share_memory(features, original):   # integer input was converted: already a copy
        features = features.copy()
    features.flags.writeable = False
    return features


class KNearestNeighbor:
    """kNN classifier with L2 distance.

    ``train`` only memorises the data; ``predict`` finds, for each test row, the
    ``k`` training rows closest in Euclidean distance and takes a majority vote of
    their labels (ties go to the smaller label).

    ``train`` keeps its own read-only copy of ``X`` (as scikit-learn does), so editing
    the caller's array afterwards, even in place (``X -= mean``), does not change the
    model: train again to use the edited data. Assigning ``knn.X_train = X`` makes the
    same copy.
    """

    def __init__(self):
        self.X_train = None
        self.y_train = None

    @property
    def X_train(self):
        """The training rows, ``(num_train, D)``: the model's own read-only copy."""
        return self._X_train

    @X_train.setter
    def X_train(self, X):
        # Data assigned directly, instead of through train(), is copied and frozen the
        # same way: the no-loop distances cache values derived from it, and an array the
        # caller still holds could be edited behind the cache's back.
        self._X_train = None if X is None else _frozen_copy(_as_features("X_train", X), X)
        self._centred = None

    def train(self, X, y):
        """Memorise the training data.

        Parameters
        ----------
        X : ndarray, (num_train, D); integer data is converted to float64
        y : ndarray of int, (num_train,) with labels >= 0

        Returns
        -------
        self, so that ``KNearestNeighbor().train(X, y).predict(X_test)`` reads naturally

        Notes
        -----
        ``X`` and ``y`` are copied: the no-loop distances reuse values derived from the
        training data, and an alias of the caller's array edited in place would leave
        them stale (disagreeing with the loop versions). The copy is read-only, so an
        in-place edit of ``self.X_train`` fails loudly instead of going unnoticed.
        Integer input is converted to float64 anyway, and that conversion is the copy.
        """
        features = _as_features("X", X)
        if features.shape[0] == 0:
            raise ValueError("train: X is empty (num_train = 0); kNN needs at least one sample")
        self.y_train = check_class_labels(y, features.shape[0]).astype(np.int64)  # astype copies
        self._X_train = _frozen_copy(features, X)
        self._centred = None
        return self

    def _centred_train(self):
        """The training mean, the centred training rows and their squared norms.

        They depend only on the training data, so they are built on the first
        no-loop call after ``train`` and reused (one float64 copy of the training
        set, besides ``train``'s own); rebuilding them per call cost a quarter of the
        no-loop time, and centring blocks of training rows on the fly a third. The cache
        is sound because ``train`` and assignment to ``X_train`` store a read-only copy
        that nobody else holds, and both drop the cache.
        """
        if self._centred is None:
            centre = self.X_train.mean(axis=0, dtype=np.float64)
            train = self.X_train - centre
            self._centred = (centre, train, np.einsum("jd,jd->j", train, train))
        return self._centred

    def _check_trained(self):
        if self.X_train is None:
            raise RuntimeError("KNearestNeighbor has no training data: call train(X, y) before predicting")

    def predict(self, X, k=1, num_loops=0):
        """Predict labels for test data.

        Parameters
        ----------
        X : ndarray, (num_test, D)
        k : int, number of neighbours that vote, 1 <= k <= num_train
        num_loops : 0, 1 or 2, which distance implementation to use (all give the same result)

        Returns
        -------
        y_pred : ndarray of int64, (num_test,)
        """
        self._check_trained()
        distances = {0: self.compute_distances_no_loops, 1: self.compute_distances_one_loop,
                     2: self.compute_distances_two_loops}
        if num_loops not in distances:
            raise ValueError(f"num_loops must be 0, 1 or 2, got {num_loops!r}")
        X = _as_features("X", X, self.X_train.shape[1])
        k = check_positive_int("k", k, "predict")
        # The full (num_test, num_train) matrix of a large test set can exceed memory,
        # so test rows go through in chunks.
        chunk = max(1, MAX_DISTANCES_PER_CHUNK // self.X_train.shape[0])
        y_pred = [self.predict_labels(distances[num_loops](X[start:start + chunk]), k=k)
                  for start in range(0, X.shape[0], chunk)]
        return np.concatenate(y_pred) if y_pred else np.zeros(0, dtype=np.int64)

    def compute_distances_two_loops(self, X):
        """L2 distances with a loop over test rows and one over training rows.

        Parameters
        ----------
        X : ndarray, (num_test, D)

        Returns
        -------
        dists : ndarray, (num_test, num_train); ``dists[i, j] = ||X[i] - X_train[j]||_2``
        """
        self._check_trained()
        X = _as_features("X", X, self.X_train.shape[1])
        dtype = np.result_type(X.dtype, self.X_train.dtype)
        dists = np.zeros((X.shape[0], self.X_train.shape[0]), dtype=dtype)
        for i in range(X.shape[0]):
            for j in range(self.X_train.shape[0]):
                diff = X[i] - self.X_train[j]
                dists[i, j] = np.sqrt(np.sum(diff * diff))
        return dists

    def compute_distances_one_loop(self, X):
        """L2 distances with one loop over test rows, broadcasting over training rows.

        Same parameters and result as ``compute_distances_two_loops``.
        """
        self._check_trained()
        X = _as_features("X", X, self.X_train.shape[1])
        dtype = np.result_type(X.dtype, self.X_train.dtype)
        dists = np.zeros((X.shape[0], self.X_train.shape[0]), dtype=dtype)
        for i in range(X.shape[0]):
            diff = self.X_train - X[i]
            dists[i] = np.sqrt(np.einsum("jd,jd->j", diff, diff))
        return dists

    def compute_distances_no_loops(self, X):
        """L2 distances with no Python loop: ``||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b``.

        The expansion cancels catastrophically when two rows are close compared with
        their norms, so both sides are first centred on the training mean (distances do
        not change; raw pixels lose their large common offset), the sum is accumulated
        in float64 whatever the input dtype, and rounding that leaves a tiny negative
        square is clipped to 0 before the square root.

        Same parameters and result as ``compute_distances_two_loops``.
        """
        self._check_trained()
        X = _as_features("X", X, self.X_train.shape[1])
        dtype = np.result_type(X.dtype, self.X_train.dtype)
        centre, train, train_sq = self._centred_train()
        test = X - centre
        # In place on the product, so no other (num_test, num_train) array is allocated.
        sq = test @ train.T
        sq *= -2.0
        sq += np.einsum("id,id->i", test, test)[:, None]
        sq += train_sq[None, :]
        np.maximum(sq, 0.0, out=sq)
        return np.sqrt(sq, out=sq).astype(dtype, copy=False)

    def predict_labels(self, dists, k=1):
        """Majority vote among the ``k`` nearest training samples.

        Parameters
        ----------
        dists : ndarray, (num_test, num_train) distances to the training data
        k : int, 1 <= k <= num_train

        Returns
        -------
        y_pred : ndarray of int64, (num_test,). Equal distances are ordered by
            training index (stable sort); a tied vote goes to the smaller label.
        """
        self._check_trained()
        num_train = self.X_train.shape[0]
        dists = np.asarray(dists)
        check_ndim("dists", dists, 2, "(num_test, num_train)")
        if dists.shape[1] != num_train:
            raise ValueError(
                f"dists has shape {dists.shape} but there are {num_train} training samples; "
                f"it must be (num_test, {num_train}), as compute_distances_* return"
            )
        k = check_positive_int("k", k, "predict_labels")
        if k > num_train:
            raise ValueError(f"predict_labels: k = {k} exceeds the number of training samples ({num_train})")
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        # Votes are counted over the labels that occur, not 0..max(label): labels such as
        # [0, 10**10] would otherwise need a vote matrix of 10**10 columns per test row.
        # np.unique sorts, so code order is label order.
        labels, codes = np.unique(self.y_train, return_inverse=True)
        closest = codes.reshape(-1)[nearest]
        num_test = dists.shape[0]
        votes = np.zeros((num_test, labels.shape[0]), dtype=np.int64)
        rows = np.arange(num_test)
        # One column at a time: within a column every row index is distinct, so += is safe.
        for j in range(k):
            votes[rows, closest[:, j]] += 1
        # argmax returns the first maximum, i.e. the smallest label among tied votes.
        return labels[votes.argmax(axis=1)].astype(np.int64, copy=False)


def cross_validate_k(X, y, k_choices, num_folds=5):
    """k-fold cross-validation of kNN's ``k``.

    The data is split, in order, into ``num_folds`` folds (``np.array_split``); each
    fold in turn is held out and classified by a kNN trained on the others. Shuffle
    the data first if it is sorted by class.

    Parameters
    ----------
    X : ndarray, (N, D)
    y : ndarray of int, (N,)
    k_choices : iterable of int; a repeated k is evaluated once (the first-seen order is kept)
    num_folds : int, 2 <= num_folds <= N

    Returns
    -------
    accuracies : dict mapping each k to a list of ``num_folds`` fold accuracies
    """
    X = _as_features("X", X)
    N = X.shape[0]
    y = check_class_labels(y, N)
    num_folds = check_positive_int("num_folds", num_folds, "cross_validate_k")
    if not 2 <= num_folds <= N:
        raise ValueError(f"cross_validate_k: num_folds must be between 2 and N = {N}, got {num_folds}")
    # dict.fromkeys drops repeats in order: each k gets num_folds accuracies, not a multiple.
    k_choices = list(dict.fromkeys(check_positive_int("k", k, "cross_validate_k") for k in k_choices))
    if not k_choices:
        raise ValueError("cross_validate_k: k_choices is empty")
    smallest_train = N - (N + num_folds - 1) // num_folds
    if max(k_choices) > smallest_train:
        raise ValueError(
            f"cross_validate_k: k = {max(k_choices)} exceeds the {smallest_train} training samples "
            f"of a fold split; use smaller k or fewer folds"
        )

    X_folds = np.array_split(X, num_folds)
    y_folds = np.array_split(y, num_folds)
    accuracies = {k: [] for k in k_choices}
    knn = KNearestNeighbor()
    for i in range(num_folds):
        knn.train(np.concatenate(X_folds[:i] + X_folds[i + 1:]), np.concatenate(y_folds[:i] + y_folds[i + 1:]))
        # One distance matrix per fold serves every k.
        dists = knn.compute_distances_no_loops(X_folds[i])
        for k in k_choices:
            accuracies[k].append(float(np.mean(knn.predict_labels(dists, k=k) == y_folds[i])))
    return accuracies


def best_k(accuracies):
    """The ``k`` with the highest mean accuracy in ``cross_validate_k``'s result (ties: smaller k)."""
    if not accuracies:
        raise ValueError("best_k: no accuracies given; pass the dict that cross_validate_k returns")
    return min(accuracies, key=lambda k: (-float(np.mean(accuracies[k])), k))
