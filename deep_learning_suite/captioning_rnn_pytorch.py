"""``CaptioningRNN`` in PyTorch: the image-captioning RNN of ``RNN_Captioning_pytorch.ipynb``.

The same model as :class:`deep_learning_suite.captioning_rnn.CaptioningRNN`, built from the
layers of :mod:`deep_learning_suite.rnn_layers_pytorch`; ``loss`` returns a scalar tensor and
autograd supplies the gradients. For image features ``(N, D)`` and captions ``(N, T)``::

    h0 = features @ W_proj + b_proj                      (N, H)
    words -> word embedding (W_embed)                    (N, T - 1, W)
    RNN or LSTM from h0 (Wx, Wh, b)                      (N, T - 1, H)
    temporal affine (W_vocab, b_vocab) -> word scores    (N, T - 1, V)
    temporal softmax loss against the next word, ignoring <NULL> padding

As in the course, ``params`` is a plain dict of tensors, not an ``nn.Module``: the notebook
overwrites its entries (``model.params[k] = torch.from_numpy(...)``) and switches their
gradients on and off itself, and
:class:`~deep_learning_suite.captioning_solver_pytorch.CaptioningSolverPytorch` turns
``requires_grad`` on for training and off again after.
"""

import numpy as np
import torch

from ._validate import check_int
from .captioning_rnn import check_vocabulary
from .rnn_layers_pytorch import (
    _index_tensor,
    affine_forward,
    lstm_forward,
    lstm_step_forward,
    rnn_forward,
    rnn_step_forward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_forward,
)

_GATES = {"rnn": 1, "lstm": 4}


def _torch_dtype(dtype):
    """A torch floating dtype from a torch dtype or a NumPy one (np.float64, 'float32')."""
    if not isinstance(dtype, torch.dtype):
        try:
            dtype = torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype
        except (TypeError, ValueError):
            raise ValueError(f"CaptioningRNN: dtype must be a floating dtype such as torch.float32 "
                             f"or torch.float64, got {dtype!r}") from None
    if not dtype.is_floating_point:
        raise ValueError(f"CaptioningRNN: dtype must be a floating dtype such as torch.float32 or "
                         f"torch.float64, got {dtype}")
    return dtype


class CaptioningRNN:
    """Caption images from their feature vectors with a vanilla RNN or an LSTM, in PyTorch.

    Parameters
    ----------
    word_to_idx : dict of str -> int
        The vocabulary, V = ``len(word_to_idx)`` words. It must hold ``'<NULL>'`` (the
        padding, ignored by the loss); ``sample`` also needs ``'<START>'``, and uses
        ``'<END>'`` when present to end a caption.
    input_dim : int
        D, the size of one image feature vector.
    wordvec_dim : int
        W, the size of a word vector.
    hidden_dim : int
        H, the size of the recurrent hidden state.
    cell_type : 'rnn' or 'lstm'
    dtype : torch dtype (or NumPy dtype), default torch.float32
        The parameters' dtype (float64 for gradient checks). Inputs are cast to it.
    device : str or torch.device, optional
        Where the parameters live; default the CPU. Inputs are moved there. (An addition:
        the course's model is CPU-only.)
    seed : int, optional
        Seeds the weight initialisation. With None the weights come from PyTorch's global
        generator, so ``torch.manual_seed`` before construction reproduces them.

    Attributes
    ----------
    params : dict of str -> tensor
        ``W_embed (V, W)``, ``W_proj (D, H)``, ``b_proj (H,)``, ``Wx (W, gH)``, ``Wh (H, gH)``,
        ``b (gH,)``, ``W_vocab (H, V)``, ``b_vocab (V,)``, with g = 1 for the RNN, 4 for the
        LSTM. Created with ``requires_grad=False``, as in the course; call
        ``v.requires_grad_()`` on them (the solver does) before ``loss(...).backward()``.
    idx_to_word : dict of int -> str
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128,
                 cell_type="rnn", dtype=torch.float32, device=None, seed=None):
        if cell_type not in _GATES:
            raise ValueError(f"CaptioningRNN: invalid cell_type {cell_type!r}; use 'rnn' or 'lstm'")
        check_vocabulary("CaptioningRNN", word_to_idx)    # the NumPy model's rules
        D, W, H = (check_int("CaptioningRNN", name, n, 1) for name, n in
                   (("input_dim", input_dim), ("wordvec_dim", wordvec_dim), ("hidden_dim", hidden_dim)))
        self.cell_type = cell_type
        self.dtype = _torch_dtype(dtype)
        self.device = torch.device("cpu" if device is None else device)
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")
        V, g = len(word_to_idx), _GATES[cell_type]
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))

        def randn(*shape):
            # Drawn in float32 on the CPU, as the course's torch.randn is, so that a given
            # torch.manual_seed gives the same weights for every dtype and device.
            return torch.randn(*shape, generator=gen)

        params = {
            "W_embed": randn(V, W) / 100,
            # 1 / sqrt(fan_in) keeps each layer's outputs O(1) at the start.
            "W_proj": randn(D, H) / np.sqrt(D), "b_proj": torch.zeros(H),
            "Wx": randn(W, g * H) / np.sqrt(W),
            "Wh": randn(H, g * H) / np.sqrt(H), "b": torch.zeros(g * H),
            "W_vocab": randn(H, V) / np.sqrt(H), "b_vocab": torch.zeros(V),
        }
        self.params = {k: v.to(device=self.device, dtype=self.dtype) for k, v in params.items()}

    # The dtype and device are read off the parameters at each call, not from self.dtype:
    # the notebook replaces params with tensors of its own (float64, on the CPU).
    def _features(self, what, features):
        W_proj = self.params["W_proj"]
        if not isinstance(features, torch.Tensor):
            features = torch.as_tensor(np.asarray(features))
        D = W_proj.shape[0]
        if features.dim() != 2 or features.shape[1] != D:
            raise ValueError(f"{what}: features must be (N, {D}) (input_dim {D}), got shape "
                             f"{tuple(features.shape)}")
        if not (features.dtype.is_floating_point or features.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{what}: features must be real numbers, got dtype {features.dtype}")
        return features.to(device=W_proj.device, dtype=W_proj.dtype)

    def _captions(self, captions, N):
        what = "CaptioningRNN.loss"
        if not isinstance(captions, torch.Tensor):
            captions = torch.as_tensor(np.asarray(captions))
        if captions.dim() != 2 or captions.shape[0] != N or captions.shape[1] < 2:
            raise ValueError(f"{what}: captions must be (N, T) with N = {N} (one per feature row) "
                             f"and T >= 2, got shape {tuple(captions.shape)}")
        return _index_tensor(what, "captions", captions, len(self.word_to_idx),
                             self.params["W_proj"].device)

    def loss(self, features, captions):
        """Training loss for images ``features`` and their ``captions``.

        Parameters
        ----------
        features : tensor (or array), (N, D)
        captions : tensor (or array) of int, (N, T) with T >= 2; entries are word indices in [0, V)

        Returns
        -------
        loss : tensor, a scalar of the parameters' dtype; ``loss.backward()`` fills the
            ``.grad`` of every parameter that requires one.
        """
        features = self._features("CaptioningRNN.loss", features)
        captions = self._captions(captions, features.shape[0])
        # The network reads every word but the last and predicts every word but the first.
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        p = self.params
        forward = rnn_forward if self.cell_type == "rnn" else lstm_forward

        h0 = affine_forward(features, p["W_proj"], p["b_proj"])
        words = word_embedding_forward(captions_in, p["W_embed"])
        h = forward(words, h0, p["Wx"], p["Wh"], p["b"])
        scores = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        return temporal_softmax_loss(scores, captions_out, mask)

    @torch.no_grad()
    def sample(self, features, max_length=30):
        """Greedy captions: at each step feed back the highest-scoring word.

        Parameters
        ----------
        features : tensor (or array), (N, D)
        max_length : int
            Words generated per caption.

        Returns
        -------
        captions : tensor of int64 on the CPU, (N, max_length)
            Word indices, without the leading ``<START>`` (``.numpy()`` gives the array the
            notebook decodes). A caption that produced ``<END>`` is padded with ``<NULL>``
            after it, and sampling stops once every caption has ended.
        """
        what = "CaptioningRNN.sample"
        if self._start is None:
            raise ValueError(f"{what}: the vocabulary has no '<START>' token to begin a caption with")
        max_length = check_int(what, "max_length", max_length, 1)
        features = self._features(what, features)
        N, p = features.shape[0], self.params
        device = features.device
        captions = torch.full((N, max_length), self._null, dtype=torch.long, device=device)
        h = affine_forward(features, p["W_proj"], p["b_proj"])
        c = torch.zeros_like(h)
        word = torch.full((N,), self._start, dtype=torch.long, device=device)
        done = torch.zeros(N, dtype=torch.bool, device=device)
        for t in range(max_length):
            x = p["W_embed"][word]
            if self.cell_type == "rnn":
                h = rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
            else:
                h, c = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            word = (h @ p["W_vocab"] + p["b_vocab"]).argmax(dim=1)
            captions[:, t] = torch.where(done, captions[:, t], word)
            if self._end is not None:
                done |= word == self._end
                if bool(done.all()):
                    break
        return captions.cpu()
