"""A tiny real model with the CS231n model contract, for Solver and checkpoint tests.

Two-layer ReLU net with a softmax loss, plus the two kinds of state the real models carry:
a running statistic updated in training mode (like batchnorm's running mean) and noise drawn
from NumPy's legacy global RNG (like dropout without a seed).
"""

import time

import numpy as np

from deep_learning_suite.layers import (affine_backward, affine_forward, relu_backward,
                                        relu_forward, softmax_loss)


class TinyNet:
    def __init__(self, D=6, H=16, C=3, seed=0, reg=0.0, dtype=np.float64, noise=True, sleep=0.0):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": (0.3 * rng.standard_normal((D, H))).astype(dtype), "b1": np.zeros(H, dtype),
            "W2": (0.3 * rng.standard_normal((H, C))).astype(dtype), "b2": np.zeros(C, dtype),
        }
        self.reg, self.noise, self.sleep = reg, noise, sleep
        self.stat_params = [{"mode": "train", "momentum": 0.9, "running_mean": np.zeros(D, dtype)}]

    def loss(self, X, y=None):
        p = self.params
        h, c1 = affine_forward(X, p["W1"], p["b1"])
        a, c2 = relu_forward(h)
        if y is not None and self.noise:
            mask = ((np.random.rand(*a.shape) < 0.9) / 0.9).astype(a.dtype)
            a = a * mask
        scores, c3 = affine_forward(a, p["W2"], p["b2"])
        if y is None:
            return scores
        if self.sleep:
            time.sleep(self.sleep)
        st = self.stat_params[0]
        st["running_mean"] = st["momentum"] * st["running_mean"] + (1 - st["momentum"]) * X.mean(0)
        loss, ds = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        da, dW2, db2 = affine_backward(ds, c3)
        if self.noise:
            da = da * mask
        dX, dW1, db1 = affine_backward(relu_backward(da, c2), c1)
        return loss, {"W1": dW1 + self.reg * p["W1"], "b1": db1,
                      "W2": dW2 + self.reg * p["W2"], "b2": db2}


def blobs(n_train=200, n_val=60, D=6, C=3, seed=0, dtype=np.float64):
    """Gaussian clusters, one per class: learnable but not trivially separable."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((C, D))

    def draw(n):
        y = rng.integers(C, size=n)
        return (centres[y] + rng.standard_normal((n, D))).astype(dtype), y.astype(np.int64)

    X_train, y_train = draw(n_train)
    X_val, y_val = draw(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def run(checkpoint_name=None, resume_from=None, sleep=0.0, num_epochs=8):
    """One fixed training recipe; returns the Solver after ``train()``.

    Seeds NumPy's legacy global RNG too (TinyNet's noise uses it), so a run started from
    scratch is reproducible and a resumed one must restore that RNG from the checkpoint.
    """
    from deep_learning_suite.trainer import Solver

    np.random.seed(5)
    model = TinyNet(seed=1, sleep=sleep)
    solver = Solver(model, blobs(), update_rule="adam", optim_config={"learning_rate": 1e-2},
                    lr_decay=0.9, num_epochs=num_epochs, batch_size=20, num_train_samples=50,
                    verbose=False, seed=3, checkpoint_name=checkpoint_name,
                    resume_from=resume_from)
    solver.train()
    return solver


if __name__ == "__main__":
    # python _tiny_model.py CHECKPOINT_NAME SLEEP: the training run the SIGKILL test interrupts.
    import sys

    run(checkpoint_name=sys.argv[1], sleep=float(sys.argv[2]))
