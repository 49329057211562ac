"""``CaptioningTransformer``: image captioning with a Transformer decoder, in PyTorch (CS231n
assignment 3), and ``CaptioningSolverTransformer``, which trains it.

Architecture, for image features ``(N, D)`` and captions ``(N, T)`` of word indices::

    memory = visual_projection(features)                 (N, 1, W)  one "image token"
    words -> embedding + positional encoding             (N, T, W)
    num_layers x TransformerDecoderLayer, causal mask    (N, T, W)
    output (linear) -> word scores                       (N, T, V)

The causal mask lets position t attend to words 0..t only, so the scores at t predict word
t + 1 from the words before it, as the RNN does. Needs PyTorch.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_int
from .captioning_rnn import check_vocabulary
from .captioning_solver import check_caption_data, run_epochs
from .captioning_solver_pytorch import _positive
from .coco import sample_coco_minibatch
from .trainer import TrainingDivergedError
from .transformer_layers import PositionalEncoding, TransformerDecoder, TransformerDecoderLayer, init_course_weights
from .utils import generator


class CaptioningTransformer(nn.Module):
    """Caption images from their feature vectors with a Transformer decoder.

    Parameters
    ----------
    word_to_idx : dict of str -> int
        The vocabulary, V = ``len(word_to_idx)`` words, with ``'<NULL>'`` (padding: its
        embedding keeps its initial N(0, 0.02) draw, as in the 2025 course, since it gets no
        gradient, and the loss skips <NULL> targets) and, for ``sample``, ``'<START>'`` (and
        ``'<END>'``); checked as the ``CaptioningRNN`` checks it (see
        ``captioning_rnn.check_vocabulary``).
    input_dim : int
        D, the size of one image feature vector.
    wordvec_dim : int
        W, the model width (word vectors, attention, residual stream).
    num_heads : int
        Attention heads; must divide ``wordvec_dim``.
    num_layers : int
        Decoder layers.
    max_length : int
        Longest caption the positional encoding covers.
    dim_feedforward : int
        Width of each layer's feed-forward block (GELU; 2048, as in the course).
    dropout : float
    """

    def __init__(self, word_to_idx, input_dim, wordvec_dim, num_heads=4, num_layers=2,
                 max_length=50, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        # Before any layer is made: a <START> outside 0..V-1 would otherwise fail only in
        # sample(), as "captions holds indices out of range", and a <NULL> outside it in
        # nn.Embedding, as a bare AssertionError.
        check_vocabulary("CaptioningTransformer", word_to_idx)
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.vocab_size = len(word_to_idx)
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")
        self.max_length = max_length
        self.visual_projection = nn.Linear(input_dim, wordvec_dim)
        self.embedding = nn.Embedding(self.vocab_size, wordvec_dim, padding_idx=self._null)
        self.positional_encoding = PositionalEncoding(wordvec_dim, dropout=dropout, max_len=max_length)
        layer = TransformerDecoderLayer(wordvec_dim, num_heads, dim_feedforward, dropout)
        self.transformer = TransformerDecoder(layer, num_layers=num_layers)
        # In the course's order: its _init_weights is applied before `output` exists, so `output`
        # keeps nn.Linear's default init, and a seeded construction draws the course's weights.
        self.apply(init_course_weights)
        self.output = nn.Linear(wordvec_dim, self.vocab_size)

    def forward(self, features, captions):
        """Word scores for every position.

        Parameters
        ----------
        features : tensor, (N, D)
        captions : tensor of int, (N, T), T <= max_length

        Returns
        -------
        scores : tensor, (N, T, V); ``scores[:, t]`` depends on ``captions[:, :t + 1]`` only
        """
        D = self.visual_projection.in_features
        if features.dim() != 2 or features.shape[1] != D:
            raise ValueError(f"CaptioningTransformer: features must be (N, {D}), got {tuple(features.shape)}")
        if captions.dim() != 2 or captions.shape[0] != features.shape[0]:
            raise ValueError(f"CaptioningTransformer: captions must be (N, T) with N = {features.shape[0]}, "
                             f"got {tuple(captions.shape)}")
        T = captions.shape[1]
        if T > self.max_length:
            raise ValueError(f"CaptioningTransformer: captions of {T} words exceed max_length "
                             f"{self.max_length}; build the model with a larger max_length")
        # Checked on the device: copying every batch of captions to the host would cost a
        # transfer per step on a GPU.
        if captions.dtype.is_floating_point or captions.dtype == torch.bool:
            raise ValueError(f"CaptioningTransformer: captions must hold integer word indices, "
                             f"got {captions.dtype}")
        bad = captions[(captions < 0) | (captions >= self.vocab_size)]
        if bad.numel():
            raise ValueError(f"CaptioningTransformer: captions holds indices out of range: "
                             f"{bad[:5].tolist()} (expected 0 <= index < {self.vocab_size}, the "
                             f"vocabulary size)")
        weight = self.visual_projection.weight
        memory = self.visual_projection(features.to(weight.dtype)).unsqueeze(1)
        words = self.positional_encoding(self.embedding(captions.long()))
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=captions.device))
        return self.output(self.transformer(words, memory, tgt_mask=causal))

    @torch.no_grad()
    def sample(self, features, max_length=30):
        """Greedy captions, in evaluation mode (no dropout); the training flag is restored after.

        Parameters
        ----------
        features : ndarray or tensor, (N, D)
        max_length : int, at most the model's ``max_length``

        Returns
        -------
        captions : ndarray of int32, (N, max_length), without the leading ``<START>``, padded
            with ``<NULL>`` after a caption's ``<END>``
        """
        if self._start is None:
            raise ValueError("CaptioningTransformer.sample: the vocabulary has no '<START>' token")
        if int(max_length) != max_length or not 1 <= max_length <= self.max_length:
            raise ValueError(f"CaptioningTransformer.sample: max_length must be in [1, "
                             f"{self.max_length}] (the model's max_length), got {max_length!r}")
        was_training = self.training
        self.eval()
        try:
            device = self.visual_projection.weight.device
            features = torch.as_tensor(features, device=device)
            N = features.shape[0]
            captions = np.full((N, max_length), self._null, dtype=np.int32)
            partial = torch.full((N, 1), self._start, dtype=torch.long, device=device)
            done = np.zeros(N, dtype=bool)
            for t in range(max_length):
                word = self.forward(features, partial)[:, -1].argmax(dim=1)
                w = word.cpu().numpy()
                captions[~done, t] = w[~done]
                if self._end is not None:
                    done |= w == self._end
                    if done.all():
                        break
                partial = torch.cat([partial, word[:, None]], dim=1)
        finally:
            self.train(was_training)
        return captions


def temporal_cross_entropy(scores, y, mask):
    """The course's Transformer loss: cross-entropy at each position, masked, averaged over all
    N * T positions (masked ones count as zeros). scores (N, T, V), y and mask (N, T)."""
    N, T, V = scores.shape
    loss = F.cross_entropy(scores.reshape(N * T, V), y.reshape(N * T), reduction="none")
    return (loss * mask.reshape(N * T).to(loss.dtype)).mean()


class CaptioningSolverTransformer:
    """Train a ``CaptioningTransformer`` with Adam on the captions of ``data``.

    Parameters
    ----------
    model : CaptioningTransformer
    data : dict with ``train_captions``, ``train_image_idxs``, ``train_features`` (``load_coco_data``)
    idx_to_word : list or dict, kept for decoding samples
    learning_rate : float, default 1e-3
        Positive and finite.
    batch_size : int, default 100
        Positive; a whole-number float such as 25.0 is taken as its int, 2.5 or True is refused.
    num_epochs : int, default 10
        Non-negative. An epoch is ``max(N // batch_size, 1)`` minibatches.
    print_every : int, default 10
        Positive.
    verbose : bool, default True
    seed : int, optional
        Seeds the minibatch draws (None follows ``np.random.seed``); dropout follows
        ``torch.manual_seed``.

    Raises
    ------
    ValueError
        An unknown option, an option of the wrong kind, or ``data`` without consistent
        training arrays (see ``check_caption_data``).
    """

    _OPTIONS = {"learning_rate": 1e-3, "batch_size": 100, "num_epochs": 10, "print_every": 10,
                "verbose": True, "seed": None}

    def __init__(self, model, data, idx_to_word, **kwargs):
        who = "CaptioningSolverTransformer"
        unknown = sorted(set(kwargs) - set(self._OPTIONS))
        if unknown:
            raise ValueError(f"{who}: unrecognized option(s) {unknown}; valid options are "
                             f"{sorted(self._OPTIONS)}")
        check_caption_data(who, data)
        opts = {**self._OPTIONS, **kwargs}
        self.model, self.data, self.idx_to_word = model, data, idx_to_word
        # As CaptioningSolverPytorch checks them, before int() would turn 2.5 into a batch of
        # 2 or 0.5 epochs into none; print_every picks iterations by t % print_every.
        self.learning_rate = _positive(who, "learning_rate", opts["learning_rate"])
        self.batch_size = check_int(who, "batch_size", opts["batch_size"], 1)
        self.num_epochs = check_int(who, "num_epochs", opts["num_epochs"], 0)
        self.print_every = check_int(who, "print_every", opts["print_every"], 1)
        self.verbose = bool(opts["verbose"])
        self.optim = torch.optim.Adam(self.model.parameters(), self.learning_rate)
        self.rng = generator(opts["seed"])
        self.epoch = 0
        self.loss_history = []

    def _step(self, t):
        captions, features, _ = sample_coco_minibatch(self.data, self.batch_size, "train", self.rng)
        device = next(self.model.parameters()).device
        captions = torch.as_tensor(captions, dtype=torch.long, device=device)
        features = torch.as_tensor(features, device=device)
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        loss = temporal_cross_entropy(self.model(features, captions_in), captions_out,
                                      captions_out != self.model._null)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"loss is {loss.item()} at iteration {t + 1} (epoch "
                                        f"{self.epoch + 1} of {self.num_epochs}); training stopped "
                                        f"before that update. Lower the learning rate (now "
                                        f"{self.learning_rate}).")
        self.loss_history.append(loss.item())
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()

    def train(self):
        """Run the optimisation in training mode; ``loss_history`` holds one loss per minibatch."""
        self.model.train()
        run_epochs(self)
