"""``cs231n.optim``: the update rules, ``rule(w, dw, config=None) -> (next_w, config)``."""

from deep_learning_suite.optim import adam, adamw, nesterov_momentum, rmsprop, sgd, sgd_momentum

__all__ = ["sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam", "adamw"]
