"""``CaptioningRNN``: an image-captioning language model (CS231n assignment 3).

Architecture, for image features ``(N, D)`` and captions ``(N, T)`` of word indices::

    h0 = features @ W_proj + b_proj                      (N, H)
    words -> word embedding (W_embed)                    (N, T - 1, W)
    RNN or LSTM from h0 (Wx, Wh, b)                      (N, T - 1, H)
    temporal affine (W_vocab, b_vocab) -> word scores    (N, T - 1, V)
    temporal softmax loss against the next word, ignoring <NULL> padding

The network reads ``captions[:, :-1]`` and learns to predict ``captions[:, 1:]``.
"""


import numpy as np

from ._validate import check_indices, check_int
from .layers import affine_backward, affine_forward
from .rnn_layers import (
    lstm_backward,
    lstm_forward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
from .utils import generator

_CELLS = {"rnn": (rnn_forward, rnn_backward, 1), "lstm": (lstm_forward, lstm_backward, 4)}
_SPECIAL = ("<NULL>", "<START>", "<END>")


def check_vocabulary(who, word_to_idx):
    """Require ``word_to_idx`` to map words to distinct integer rows of a V-word vocabulary.

    V is ``len(word_to_idx)``, as in the course: the model has V word vectors and V scores.

    Parameters
    ----------
    who : str
        The caller, named in error messages.
    word_to_idx : dict of str -> int

    Raises
    ------
    ValueError
        ``word_to_idx`` is not a dict holding ``'<NULL>'``; an index is not an integer (a
        string ``"0"`` or a bool); two words share an index (one of them could never be
        decoded); or ``<NULL>``, ``<START>`` or ``<END>`` lies outside ``0..V-1``, where it
        would not be a row of the model (``<NULL>`` = 5 with V = 3 counts the padding in
        the loss, ``<START>`` = 9 fails in ``sample``).

    Other words may lie outside ``0..V-1``: they can then never appear in a caption the
    model reads or writes (a caption holding their index is refused by ``loss``), but the
    course's own check cell uses ``{'<NULL>': 0, 'cat': 2, 'dog': 3}`` (V = 3) and must run
    as it is, without a warning it did not write.
    """
    if not isinstance(word_to_idx, dict) or "<NULL>" not in word_to_idx:
        raise ValueError(f"{who}: word_to_idx must be a dict of word -> index that holds "
                         f"'<NULL>', the padding token")
    V = len(word_to_idx)
    not_int = {w: i for w, i in word_to_idx.items()
               if isinstance(i, bool) or not isinstance(i, (int, np.integer))}
    if not_int:
        raise ValueError(f"{who}: word_to_idx values must be integer indices, got "
                         f"{_some(not_int)}; build it as {{word: i for i, word in "
                         f"enumerate(idx_to_word)}}")
    by_index = {}
    for w, i in word_to_idx.items():
        by_index.setdefault(int(i), []).append(w)
    shared = {i: ws for i, ws in by_index.items() if len(ws) > 1}
    if shared:
        raise ValueError(f"{who}: word_to_idx gives one index to several words: "
                         f"{_some(shared)}; every word needs its own index in 0..{V - 1}")
    outside = {w: int(i) for w, i in word_to_idx.items() if not 0 <= i < V}
    special = {w: i for w, i in outside.items() if w in _SPECIAL}
    if special:
        raise ValueError(f"{who}: word_to_idx has {V} words, so indices must be 0..{V - 1}, "
                         f"but {_some(special)} lie outside; renumber the vocabulary as "
                         f"0..{V - 1}")


def _some(entries, limit=5):
    """At most ``limit`` entries of a dict, for an error message."""
    shown = ", ".join(f"{k!r}: {v!r}" for k, v in list(entries.items())[:limit])
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return f"{{{shown}}}{more}"


class CaptioningRNN:
    """Caption images from their feature vectors with a vanilla RNN or an LSTM.

    Parameters
    ----------
    word_to_idx : dict of str -> int
        The vocabulary, V = ``len(word_to_idx)`` words with distinct integer indices, which
        should be ``0..V-1`` (see ``check_vocabulary``). It must hold ``'<NULL>'`` (the
        padding, ignored by the loss); ``sample`` also needs ``'<START>'``, and uses
        ``'<END>'`` when present to end a caption.
    input_dim : int
        D, the size of one image feature vector. Whole-number floats (``512.0``) and NumPy
        integers are accepted as the int they hold; ``True`` and ``4.5`` are refused.
    wordvec_dim : int
        W, the size of a word vector.
    hidden_dim : int
        H, the size of the recurrent hidden state.
    cell_type : 'rnn' or 'lstm'
    dtype : numpy dtype
        Parameters, inputs and gradients use this dtype (float64 for gradient checks).
    seed : int or None
        Seeds the weight initialisation. With None the weights come from NumPy's global
        generator, so ``np.random.seed`` before construction reproduces them.

    Attributes
    ----------
    params : dict
        ``W_proj (D, H)``, ``b_proj (H,)``, ``W_embed (V, W)``, ``Wx (W, gH)``, ``Wh (H, gH)``,
        ``b (gH,)``, ``W_vocab (H, V)``, ``b_vocab (V,)``, with g = 1 for the RNN, 4 for the LSTM.
    idx_to_word : dict of int -> str
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128,
                 cell_type="rnn", dtype=np.float32, seed=None):
        if cell_type not in _CELLS:
            raise ValueError(f"CaptioningRNN: invalid cell_type {cell_type!r}; use 'rnn' or 'lstm'")
        check_vocabulary("CaptioningRNN", word_to_idx)
        # check_int returns a plain int: a float 4.0 would pass a whole-number test and then
        # fail as an array shape, and True would pass as 1.
        input_dim, wordvec_dim, hidden_dim = (
            check_int("CaptioningRNN", name, n, 1) for name, n in
            (("input_dim", input_dim), ("wordvec_dim", wordvec_dim), ("hidden_dim", hidden_dim)))
        self.cell_type = cell_type
        self.dtype = dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {int(i): w for w, i in word_to_idx.items()}
        self._null = int(word_to_idx["<NULL>"])
        self._start = None if "<START>" not in word_to_idx else int(word_to_idx["<START>"])
        self._end = None if "<END>" not in word_to_idx else int(word_to_idx["<END>"])
        V, g = len(word_to_idx), _CELLS[cell_type][2]
        rng = generator(seed)

        def scaled(shape, fan_in):      # 1 / sqrt(fan_in) keeps each layer's outputs O(1)
            return rng.standard_normal(shape) / np.sqrt(fan_in)
        params = {
            "W_proj": scaled((input_dim, hidden_dim), input_dim), "b_proj": np.zeros(hidden_dim),
            "W_embed": rng.standard_normal((V, wordvec_dim)) / 100,
            "Wx": scaled((wordvec_dim, g * hidden_dim), wordvec_dim),
            "Wh": scaled((hidden_dim, g * hidden_dim), hidden_dim), "b": np.zeros(g * hidden_dim),
            "W_vocab": scaled((hidden_dim, V), hidden_dim), "b_vocab": np.zeros(V),
        }
        self.params = {k: v.astype(dtype) for k, v in params.items()}

    def _features(self, features):
        features = np.asarray(features)
        D = self.params["W_proj"].shape[0]
        if features.ndim != 2 or features.shape[1] != D:
            raise ValueError(f"CaptioningRNN: features must be (N, {D}) (input_dim {D}), "
                             f"got shape {features.shape}")
        return features.astype(self.dtype, copy=False)

    def loss(self, features, captions):
        """Training loss and gradients for images ``features`` and their ``captions``.

        Parameters
        ----------
        features : ndarray, (N, D)
        captions : ndarray of int, (N, T) with T >= 2; entry (n, t) is a word index in [0, V)

        Returns
        -------
        loss : float
        grads : dict keyed like ``params``
        """
        features = self._features(features)
        captions = np.asarray(captions)
        if captions.ndim != 2 or captions.shape[0] != features.shape[0] or captions.shape[1] < 2:
            raise ValueError(f"CaptioningRNN.loss: captions must be (N, T) with N = "
                             f"{features.shape[0]} (one per feature row) and T >= 2, got shape "
                             f"{captions.shape}")
        captions = check_indices("CaptioningRNN.loss", captions, len(self.word_to_idx), "captions")
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        p = self.params
        forward, backward, _ = _CELLS[self.cell_type]

        h0, proj_cache = affine_forward(features, p["W_proj"], p["b_proj"])
        words, embed_cache = word_embedding_forward(captions_in, p["W_embed"])
        h, cell_cache = forward(words, h0, p["Wx"], p["Wh"], p["b"])
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)

        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dwords, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cell_cache)
        grads["W_embed"] = word_embedding_backward(dwords, embed_cache)
        _, grads["W_proj"], grads["b_proj"] = affine_backward(dh0, proj_cache)
        return loss, grads

    def sample(self, features, max_length=30):
        """Greedy captions: at each step feed back the highest-scoring word.

        Parameters
        ----------
        features : ndarray, (N, D)
        max_length : int
            Words generated per caption; a positive whole number (``30.0`` passes as 30).

        Returns
        -------
        captions : ndarray of int32, (N, max_length)
            Word indices, without the leading ``<START>``. A caption that produced ``<END>``
            is padded with ``<NULL>`` after it (``decode_captions`` stops there anyway).
        """
        if self._start is None:
            raise ValueError("CaptioningRNN.sample: the vocabulary has no '<START>' token to "
                             "begin a caption with")
        max_length = check_int("CaptioningRNN.sample", "max_length", max_length, 1)
        features = self._features(features)
        N, p = features.shape[0], self.params
        captions = np.full((N, max_length), self._null, dtype=np.int32)
        h = features @ p["W_proj"] + p["b_proj"]
        c = np.zeros_like(h)
        word = np.full(N, self._start)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            x = p["W_embed"][word]
            if self.cell_type == "rnn":
                h, _ = rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
            else:
                h, c, _ = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            word = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)
            captions[~done, t] = word[~done]
            if self._end is not None:
                done |= word == self._end
                if done.all():
                    break
        return captions
