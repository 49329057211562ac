"""A ``model.npz`` written by ``python -m deep_learning_suite train``, loaded for ``evaluate``.

The file's SHA-256 only says it is the file that was written; what it describes could still
have been edited (the checksum recomputed) or written by another version. So the metadata is
checked first (a known model kind, its constructor's arguments of sane sizes, a finite
normalisation), then the model is built from it and the stored parameters must match that
model's names, shapes and dtypes exactly, before anything is scored. Every problem is a
``CLIError`` naming the file.
"""

import numpy as np

from .cli import _SAVED_ARGS, DATASETS, MAX_LAYERS, SEED_MAX, CLIError, _is_count, _is_real, build_model

MAX_PARAMS = 10 ** 8        # 400 MB of float32 weights; the CLI's own runs need ~1/100 of that
_SIZE = "a positive integer"
# model_spec's kwargs per model: what each must be (a test, and its description). Sizes have
# no cap of their own: the total, MAX_PARAMS, is what bounds the memory, and `train` checks
# the same total, so evaluate accepts whatever train wrote.
_MODEL_KWARGS = {
    "cnn": {
        "input_dim": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_count(d) for d in v),
                      "[C, H, W], each " + _SIZE),
        "num_filters": (_is_count, _SIZE),
        "filter_size": (lambda v: _is_count(v) and v % 2 == 1, "an odd positive integer"),
        "hidden_dim": (_is_count, _SIZE),
        "num_classes": (_is_count, _SIZE),
        "weight_scale": (_is_real, "a finite number"), "reg": (_is_real, "a finite number"),
    },
    "fc": {
        "hidden_dims": (lambda v: isinstance(v, list) and len(v) <= MAX_LAYERS
                        and all(_is_count(d) for d in v),
                        f"a list of at most {MAX_LAYERS} sizes, each {_SIZE}"),
        "input_dim": (_is_count, _SIZE),
        "num_classes": (_is_count, _SIZE),
        "dropout_keep_ratio": (lambda v: _is_real(v) and 0 < v <= 1, "a number in (0, 1]"),
        "normalization": (lambda v: v in (None, "batchnorm", "layernorm"),
                          "null, 'batchnorm' or 'layernorm'"),
        "reg": (_is_real, "a finite number"), "weight_scale": (_is_real, "a finite number"),
        "seed": (lambda v: v is None or _SAVED_ARGS["seed"](v), f"null or 0 .. {SEED_MAX}"),
    },
}


def num_params(kind, kw):
    """How many parameters the model ``model_spec`` describes has (a bound for fc: gammas too)."""
    if kind == "cnn":
        (C, H, W), F, k = kw["input_dim"], kw["num_filters"], kw["filter_size"]
        hidden, K = kw["hidden_dim"], kw["num_classes"]
        return F * (C * k * k + 1) + (F * (H // 2) * (W // 2) + 1) * hidden + (hidden + 1) * K
    dims = [kw["input_dim"], *kw["hidden_dims"], kw["num_classes"]]
    return sum((a + 3) * b for a, b in zip(dims, dims[1:]))     # W, b and gamma, beta


def _check_meta(path, meta):
    """The model kind and kwargs of a ``train`` checkpoint's metadata, checked."""
    kind, kwargs = meta["model"], meta.get("model_kwargs")
    if not isinstance(kind, str) or kind not in _MODEL_KWARGS:     # a list cannot be looked up
        raise CLIError(f"{path} holds a {kind!r} model; `train` writes only "
                       f"{' and '.join(_MODEL_KWARGS)} models")
    spec = _MODEL_KWARGS[kind]
    if not isinstance(kwargs, dict):
        raise CLIError(f"{path} does not say how its {kind} model is built (no model_kwargs); "
                       f"it was not written by `train`")
    problems = [f"unknown {k!r}" for k in sorted(set(kwargs) - set(spec))]
    problems += [f"no {k!r}" for k in spec if k not in kwargs]
    problems += [f"{k}={kwargs[k]!r} must be {what}" for k, (ok, what) in spec.items()
                 if k in kwargs and not ok(kwargs[k])]
    if not problems and num_params(kind, kwargs) > MAX_PARAMS:
        problems = [f"they describe {num_params(kind, kwargs):,} parameters, more than the "
                    f"{MAX_PARAMS:,} this command loads"]
    if problems:
        raise CLIError(f"{path}: bad model_kwargs for its {kind} model: {'; '.join(problems)}")
    if meta.get("dataset") not in DATASETS:
        raise CLIError(f"{path} was trained on {meta.get('dataset')!r}, not one of "
                       f"{', '.join(DATASETS)}")
    norm = meta.get("normalization")
    mean, std = (norm.get("mean"), norm.get("std")) if isinstance(norm, dict) else (None, None)
    channels = kwargs["input_dim"][0] if kind == "cnn" else None
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) >= 1
            and all(_is_real(m) and abs(m) <= 1e6 for m in mean)
            and all(_is_real(d) and 1e-8 <= d <= 1e6 for d in std)
            and (len(mean) == channels if kind == "cnn" else kwargs["input_dim"] % len(mean) == 0)):
        raise CLIError(f"{path}: its normalization must hold a finite mean and a std >= 1e-8 "
                       f"(what `train` stores) per input channel"
                       f"{f' ({channels})' if channels else ''}, got {norm!r}")
    return kind, kwargs


def _same_layout(mine, theirs):
    """Whether ``theirs`` can stand for the model attribute ``mine``: the same kind of container
    (lists of the same length), arrays of the same shape and dtype; dicts may gain keys (the
    running statistics batchnorm adds on its first forward pass)."""
    if isinstance(mine, np.ndarray):
        return isinstance(theirs, np.ndarray) and \
            (mine.shape, mine.dtype) == (theirs.shape, theirs.dtype)
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, list):
        return len(mine) == len(theirs) and all(map(_same_layout, mine, theirs))
    if isinstance(mine, dict):
        return all(_same_layout(mine[k], theirs[k]) for k in mine if k in theirs)
    return True


def load_trained(path):
    """Rebuild the model stored in a ``train`` checkpoint; returns ``(model, meta)``.

    The metadata is checked before a model is built and the parameters against the model
    built, so a damaged or edited file is a ``CLIError`` naming the file and the problem.
    """
    from .checkpoint import load_checkpoint
    from .trainer import _param_mismatch

    state = load_checkpoint(path)
    meta = state.get("meta") if isinstance(state, dict) else None
    if not isinstance(meta, dict) or "model" not in meta:
        raise CLIError(f"{path} does not say which model it holds (not written by `train`)")
    kind, kwargs = _check_meta(path, meta)
    try:
        model = build_model(kind, kwargs)
    except (ValueError, TypeError) as e:
        raise CLIError(f"{path}: its model_kwargs build no {kind} model: {e}") from e

    params, model_state = state.get("params"), state.get("model_state")
    if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) for v in params.values()):
        raise CLIError(f"{path} holds no parameters (a 'params' table of arrays); it was not "
                       f"written by `train`")
    mine = {k: (v.shape, v.dtype) for k, v in model.params.items()}
    theirs = {k: (v.shape, v.dtype) for k, v in params.items()}
    their_class, my_class = state.get("model_class"), type(model).__name__
    if mine != theirs or their_class not in (None, my_class):
        why = _param_mismatch(theirs, mine, their_class, my_class)
        raise CLIError(f"{path}: its parameters do not fit the {kind} model its settings "
                       f"describe: {why}")
    bad = [k for k, v in sorted(params.items()) if not np.isfinite(v).all()]
    if bad:
        raise CLIError(f"{path}: parameters {', '.join(bad)} hold NaN or infinite values")
    if not isinstance(model_state, dict):
        raise CLIError(f"{path} holds no model_state (a table, empty for a model without "
                       f"batchnorm); it was not written by `train`")
    attrs = vars(model)
    for name, value in model_state.items():
        # only what the model already holds as data: never params, methods or new attributes
        have = attrs.get(name)
        if name == "params" or not isinstance(have, (list, dict, np.ndarray)) \
                or not _same_layout(have, value):
            raise CLIError(f"{path}: its model_state sets {name!r}, which is not state a "
                           f"{my_class} like this one holds")
    for i, bn in enumerate(model_state.get("bn_params", []), start=1):
        for key in ("running_mean", "running_var"):
            v = bn.get(key)
            if v is not None and not (isinstance(v, np.ndarray) and v.shape == mine[f"gamma{i}"][0]
                                      and v.dtype == model.dtype and np.isfinite(v).all()
                                      and (key == "running_mean" or (v >= 0).all())):
                raise CLIError(f"{path}: its batchnorm {key} of layer {i} is not a finite "
                               f"{model.dtype.__name__} vector of {mine[f'gamma{i}'][0]}")
    model.params.update(params)
    for name, value in model_state.items():
        setattr(model, name, value)
    shape = (1, *kwargs["input_dim"]) if kind == "cnn" else (1, kwargs["input_dim"])
    try:                            # e.g. batchnorm running statistics of the wrong size
        scores = model.loss(np.zeros(shape, np.float32))
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise CLIError(f"{path}: its model does not run: {type(e).__name__}: {e}") from e
    if np.shape(scores) != (1, kwargs["num_classes"]):
        raise CLIError(f"{path}: its model gives scores of shape {np.shape(scores)}, not "
                       f"(1, {kwargs['num_classes']})")
    return model, meta
