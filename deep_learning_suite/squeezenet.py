"""SqueezeNet 1.1 (Iandola et al., 2016), the small ImageNet network of CS231n assignment 3.

The layer layout and parameter names are torchvision's, so its pretrained state dict
(``squeezenet1_1-b8a52dc0.pth``) loads as is, and ``model.features`` is the feature stack the
style-transfer notebook indexes (``content_layer=3``, ``style_layers=(1, 4, 6, 7)``).

Input (N, 3, H, W) normalised with ``imagenet.SQUEEZENET_MEAN / SQUEEZENET_STD``; output
(N, num_classes) class scores. For H = W = 224 the feature map is (N, 512, 13, 13). Weights
are read with ``torch.load(weights_only=True)``, never by unpickling arbitrary objects.
"""

from pathlib import Path

import torch
import torch.nn as nn

from .data import ChecksumError, cache_dir, download_url, file_digest

SQUEEZENET1_1_URL = "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"
# torchvision names its files <name>-<first 8 hex digits of the file's SHA-256>.pth
SQUEEZENET1_1_SHA256_PREFIX = "b8a52dc0"
# torchvision's names for those weights: the enum member, its alias, and both qualified
_IMAGENET_WEIGHTS_NAMES = ("IMAGENET1K_V1", "DEFAULT", "SqueezeNet1_1_Weights.IMAGENET1K_V1",
                           "SqueezeNet1_1_Weights.DEFAULT")


class Fire(nn.Module):
    """Squeeze (1x1 conv to ``squeeze_planes``), then expand with 1x1 and 3x3 convs side by side.

    x: (N, inplanes, H, W) -> (N, expand1x1_planes + expand3x3_planes, H, W).
    """

    def __init__(self, inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], dim=1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1: ``features`` (13 modules, indexed as in torchvision) then ``classifier``.

    Spatial size through ``features`` for a 224 input: conv 3x3 stride 2 -> 111,
    ceil-mode 3x3/2 pools -> 55 -> 27 -> 13 (H' = ceil((H - 3) / 2) + 1).
    """

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()
        self.num_classes = num_classes
        pool = dict(kernel_size=3, stride=2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(**pool),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(**pool),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(**pool),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # The paper's init: small Gaussian for the class scores, Kaiming elsewhere.
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"SqueezeNet expects images of shape (N, 3, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 17:
            raise ValueError(f"SqueezeNet needs images of at least 17x17 pixels (three stride-2 "
                             f"stages), got {tuple(x.shape[-2:])}")
        return torch.flatten(self.classifier(self.features(x)), 1)


def pretrained_weights_path(download=True, progress=True):
    """The ImageNet weights file in the per-user cache, downloaded and verified if missing.

    The download goes to a temporary file and is kept only if its SHA-256 starts with the
    prefix torchvision publishes in the file name.
    """
    path = cache_dir() / "models" / Path(SQUEEZENET1_1_URL).name
    if path.is_file():
        return path
    if not download:
        raise FileNotFoundError(f"{path} does not exist; download {SQUEEZENET1_1_URL} there, or pass "
                                f"weights=<path to the .pth file>")
    tmp = download_url(SQUEEZENET1_1_URL, path.with_suffix(".download"), progress=progress)
    if not file_digest(tmp, "sha256").startswith(SQUEEZENET1_1_SHA256_PREFIX):
        tmp.unlink()
        raise ChecksumError(f"{SQUEEZENET1_1_URL} downloaded with the wrong SHA-256 (expected it to "
                            f"start with {SQUEEZENET1_1_SHA256_PREFIX}); the file was deleted")
    tmp.replace(path)
    return path


def load_state_dict_file(path):
    """A state dict from a ``.pth`` file, read with ``weights_only=True`` (tensors only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError or zip errors here
        raise ValueError(f"{path} is not a PyTorch state dict that loads with weights_only=True: "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of parameter name -> tensor)")
    return state


def squeezenet1_1(weights=None, num_classes=1000, progress=True, pretrained=None, **kwargs):
    """SqueezeNet 1.1, randomly initialised or with weights.

    Parameters
    ----------
    weights : None, str, Path, dict, or "IMAGENET1K_V1" / "DEFAULT" / True
        None: random init. A path: a state dict file (torchvision's ``squeezenet1_1-*.pth`` or
        one saved from this model). A dict: a state dict. ``"IMAGENET1K_V1"``, ``"DEFAULT"``
        (torchvision's names, also as ``"SqueezeNet1_1_Weights.DEFAULT"``) or True: the
        ImageNet weights from the per-user cache, downloaded the first time and checked
        against the SHA-256 prefix in torchvision's file name.
    num_classes : int
        Number of class scores; must be 1000 for the ImageNet weights.
    progress : bool
        Show a progress bar while downloading.
    pretrained : bool, optional
        torchvision's spelling before 0.13, which the course's notebooks use: True is
        ``weights="IMAGENET1K_V1"``, False is no weights. Give it or ``weights``, not both.

    Returns
    -------
    SqueezeNet
        In training mode, as torchvision returns it; call ``.eval()`` for inference.
    """
    if pretrained is not None:
        if not isinstance(pretrained, bool):
            raise ValueError(f"pretrained must be True or False, got {pretrained!r}")
        if weights is not None:
            raise ValueError("pass either weights= or the older pretrained=, not both; "
                             "pretrained=True is weights='IMAGENET1K_V1'")
        weights = "IMAGENET1K_V1" if pretrained else None
    model = SqueezeNet(num_classes=num_classes, **kwargs)
    if weights is None or weights is False:
        return model
    if weights is True or (isinstance(weights, str) and weights in _IMAGENET_WEIGHTS_NAMES):
        weights = pretrained_weights_path(progress=progress)
    elif isinstance(weights, str) and not Path(weights).is_file():
        # A bare name here is most likely a misspelt torchvision weights name, not a path.
        raise FileNotFoundError(f"no weights file at {weights}; weights= takes a path to a .pth file, "
                                f"a state dict, or 'IMAGENET1K_V1' or 'DEFAULT' for the ImageNet weights")
    state = weights if isinstance(weights, dict) else load_state_dict_file(weights)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:4]}" if missing else "", f"unexpected {unexpected[:4]}" if unexpected else "",
                 "shape mismatch " + ", ".join(f"{k}: file {tuple(state[k].shape)} vs model "
                                               f"{tuple(own[k].shape)}" for k in sorted(wrong)[:4])
                 if wrong else ""]
        raise ValueError("these weights are not a SqueezeNet 1.1 state dict for num_classes="
                         f"{num_classes}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state)
    return model
