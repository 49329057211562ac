"""A fully-connected network of any depth with optional normalisation and dropout.

Architecture, for ``L = len(hidden_dims) + 1`` layers::

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax
"""

from collections.abc import Iterable

import numpy as np

from ._validate import check_int, check_real, check_reg
from .batchnorm import batchnorm_backward_alt, batchnorm_forward, layernorm_backward, layernorm_forward
from .dropout import dropout_backward, dropout_forward
from .layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
from .saved_params import load_params, save_params

_NORMALIZATIONS = (None, "batchnorm", "layernorm")


class FullyConnectedNet:
    """Multi-layer perceptron trained with softmax cross-entropy.

    Parameters
    ----------
    hidden_dims : list of int
        Width of each hidden layer (any sequence: list, tuple, 1-D array); ``[]`` gives
        a linear softmax classifier.
    input_dim : int
        D, the size of one flattened input.
    num_classes : int
        C, the number of scores per input.
    dropout_keep_ratio : float
        Probability of keeping a unit in dropout, 0 < p <= 1; 1 means no dropout.
    normalization : None, 'batchnorm' or 'layernorm'
        Normalisation after each hidden affine layer.
    reg : float
        L2 strength: the loss gains ``0.5 * reg * sum(W**2)`` over the weight matrices.
        Read at every ``loss`` call, so it may be changed after construction.
    weight_scale : float >= 0
        Weights start as ``weight_scale * N(0, 1)``; biases and betas at 0, gammas at 1.
    dtype : numpy dtype
        Parameters, inputs and gradients use this dtype (float64 for gradient checks).
    seed : int >= 0 or None
        Seeds the weight initialisation and fixes the dropout masks: hidden layer ``i``
        (from 1) draws its mask from seed ``seed + i - 1``, so each layer drops its own
        units, and the same ones at every call (what makes a gradient check possible).
        With None the weights and masks come from NumPy's global generator, so
        ``np.random.seed`` reproduces them, as in CS231n.
    use_batchnorm : bool
        Older spelling of ``normalization='batchnorm'``.
    dropout : float or None
        Older spelling of ``dropout_keep_ratio`` (the 2018-2020 assignments' name, also
        the probability of keeping a unit).

    Attributes
    ----------
    params : dict
        ``W1..WL``, ``b1..bL``, and ``gamma1.., beta1..`` for the normalised hidden layers.
    bn_params : list of dict
        One per hidden layer when normalising (running statistics live here).
    dropout_param : dict
        ``{'mode', 'p'[, 'seed']}``, empty without dropout; ``seed`` is the first hidden
        layer's, each later layer adds 1 to it (read at every ``loss`` call).
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
        use_batchnorm=False,
        dropout=None,
    ):
        if dropout is not None:
            if dropout_keep_ratio != 1 and dropout_keep_ratio != dropout:
                raise ValueError(f"dropout={dropout!r} and dropout_keep_ratio={dropout_keep_ratio!r} are two "
                                 f"names for the same keep probability; give only one")
            if dropout == 0:
                raise ValueError("dropout=0: dropout is the probability of KEEPING a unit (as in the course "
                                 "since 2018), so 0 would drop everything; use dropout=1 for no dropout")
            dropout_keep_ratio = dropout
        if use_batchnorm:
            if normalization not in (None, "batchnorm"):
                raise ValueError(
                    f"use_batchnorm=True asks for batch norm but normalization={normalization!r}; give only one"
                )
            normalization = "batchnorm"
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
        what = type(self).__name__
        keep = check_real(what, "dropout" if dropout is not None else "dropout_keep_ratio", dropout_keep_ratio)
        if not 0 < keep <= 1:
            raise ValueError(
                f"dropout_keep_ratio is the probability of KEEPING a unit, 0 < p <= 1 (1 = no dropout), "
                f"got {dropout_keep_ratio!r}"
            )
        weight_scale = check_real(what, "weight_scale", weight_scale, 0.0)
        if seed is not None:
            seed = check_int(what, "seed", seed, 0)
        if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Iterable) \
                or (isinstance(hidden_dims, np.ndarray) and hidden_dims.ndim != 1):
            raise ValueError(f"hidden_dims must be a list of hidden-layer widths, e.g. [5] for one layer of 5 "
                             f"units or [] for none, got {hidden_dims!r}")
        hidden_dims = list(hidden_dims)
        dims = [input_dim, *hidden_dims, num_classes]
        if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0 for d in dims):
            raise ValueError(
                f"input_dim, hidden_dims and num_classes must be positive integers, got "
                f"input_dim={input_dim!r}, hidden_dims={hidden_dims!r}, num_classes={num_classes!r}"
            )

        self.normalization = normalization
        self.use_dropout = keep != 1
        self.reg = reg
        self.num_layers = len(dims) - 1
        self.dtype = dtype
        self.params = {}

        rng = np.random.default_rng(seed) if seed is not None else None
        for i in range(1, self.num_layers + 1):
            fan_in, fan_out = dims[i - 1], dims[i]
            if rng is not None:
                draw = rng.standard_normal((fan_in, fan_out))
            else:
                draw = np.random.randn(fan_in, fan_out)
            self.params[f"W{i}"] = (weight_scale * draw).astype(dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out, dtype=dtype)
                self.params[f"beta{i}"] = np.zeros(fan_out, dtype=dtype)

        # The same masks at every call when seeded: that is what makes a gradient check possible.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": keep}
            if seed is not None:
                self.dropout_param["seed"] = seed

        self.bn_params = []
        if normalization is not None:
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Parameters
        ----------
        X : ndarray, (N, d_1, ..., d_k) with d_1 * ... * d_k = input_dim
        y : ndarray of int, (N,), or None

        Returns
        -------
        scores : (N, C), when y is None (test mode: running statistics, no dropout);
        otherwise (loss, grads) with grads[k] shaped like params[k].
        """
        X = np.asarray(X)
        D = self.params["W1"].shape[0]
        if X.ndim < 2 or np.prod(X.shape[1:]) != D:
            raise ValueError(
                f"{type(self).__name__} expects X of shape (N, d_1, ..., d_k) with d_1 * ... * d_k = "
                f"input_dim = {D}, got X of shape {X.shape}; reshape X to (N, {D}) or build the "
                f"model with the input_dim of the data"
            )
        X = X.astype(self.dtype, copy=False)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode

        caches = []
        h = X
        for i in range(1, self.num_layers):
            h, fc_cache = affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                h, norm_cache = batchnorm_forward(
                    h, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1]
                )
            elif self.normalization == "layernorm":
                h, norm_cache = layernorm_forward(
                    h, self.params[f"gamma{i}"], self.params[f"beta{i}"], self.bn_params[i - 1]
                )
            h, relu_cache = relu_forward(h)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self._layer_dropout_param(i))
            caches.append((fc_cache, norm_cache, relu_cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])

        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            fc_cache, norm_cache, relu_cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            dh = relu_backward(dh, relu_cache)
            if self.normalization == "batchnorm":
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward_alt(dh, norm_cache)
            elif self.normalization == "layernorm":
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = layernorm_backward(dh, norm_cache)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, fc_cache)

        reg = check_reg(type(self).__name__, self.reg)
        for i in range(1, L + 1):
            W = self.params[f"W{i}"]
            loss += 0.5 * reg * np.sum(W * W)
            grads[f"W{i}"] += reg * W
        return loss, grads

    def _layer_dropout_param(self, i):
        """``dropout_param`` for hidden layer ``i``: with a seed, layer i's own, ``seed + i - 1``.

        One seed for every layer would drop the same units in all hidden layers of one width.
        """
        seed = self.dropout_param.get("seed")
        return self.dropout_param if seed is None else {**self.dropout_param, "seed": seed + i - 1}

    def save(self, fname):
        """Save ``params`` to ``fname``, as the course's ``save`` does, without pickle.

        Parameters
        ----------
        fname : str or os.PathLike
            A bare name goes into ``./cs231n/saved/`` in the course's layout (an assignment's
            ``cs231n/`` folder in the working directory), else ``./saved/`` (created when
            missing); a path with a directory part is used as given. The name is kept exactly. See ``saved_params.save_params``.

        Prints ``"<fname> saved."``. The file is written atomically. Only ``params`` is saved,
        as in the course: batch norm's running statistics (in ``bn_params``) are not.
        """
        save_params(fname, self.params)
        print(f"{fname} saved.")

    def load(self, fname):
        """Load parameters saved by ``save`` (or by the course's own code) into this model.

        Parameters
        ----------
        fname : str or os.PathLike
            As given to ``save``.

        Returns
        -------
        bool
            True after printing ``"<fname> loaded."``; False after printing
            ``"<fname> not available."`` when there is no such file (``params`` unchanged).

        Raises
        ------
        ValueError
            The file is corrupt or hostile (``saved_params.SavedParamsError``), or its
            parameter names or shapes do not fit this model (all mismatches are listed);
            the model is then left unchanged.

        Notes
        -----
        ``params`` stays the same dict object (the one ``loss`` reads and a ``Solver`` holds);
        its arrays are replaced by the file's, cast to this model's ``dtype``.
        """
        try:
            loaded = load_params(fname)
        except FileNotFoundError:
            print(f"{fname} not available.")
            return False
        missing = [k for k in self.params if k not in loaded]
        unexpected = [k for k in loaded if k not in self.params]
        wrong = [f"{k} is {loaded[k].shape} in the file but {v.shape} here"
                 for k, v in self.params.items() if k in loaded and loaded[k].shape != v.shape]
        if missing or unexpected or wrong:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) \
                + ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + wrong
            raise ValueError(f"{type(self).__name__}.load({fname!r}): the file's parameters do not "
                             f"fit this {self.num_layers}-layer model: {'; '.join(problems)}")
        # Every layer computes in self.dtype (loss casts X to it), so the weights must match.
        self.params.update({k: loaded[k].astype(self.dtype, copy=False) for k in self.params})
        print(f"{fname} loaded.")
        return True


class TwoLayerNet(FullyConnectedNet):
    """CS231n's two-layer net, affine - relu - affine - softmax, with its constructor.

    The same network as ``FullyConnectedNet([hidden_dim], ...)``; only the signature and the
    default dtype differ. float64 by default, as in the course, whose notebook checks the
    loss to 1e-10 after overwriting ``params`` with float64 arrays.

    Parameters
    ----------
    input_dim : int
        D, the size of one flattened input.
    hidden_dim : int
        H, the width of the hidden layer.
    num_classes : int
        C, the number of scores per input.
    weight_scale : float
        W1 (D, H) and W2 (H, C) start as ``weight_scale * N(0, 1)``; b1 (H,) and b2 (C,) at 0.
    reg : float
        L2 strength: the loss gains ``0.5 * reg * (sum(W1**2) + sum(W2**2))``.
    dtype : numpy dtype
    seed : int or None
        As for ``FullyConnectedNet``.
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, dtype=np.float64, seed=None):
        super().__init__([hidden_dim], input_dim=input_dim, num_classes=num_classes, reg=reg,
                         weight_scale=weight_scale, dtype=dtype, seed=seed)
