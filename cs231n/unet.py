"""``cs231n.unet``: the DDPM notebook's conditional U-Net, with classifier-free guidance."""

from deep_learning_suite.unet import (
    Block,
    Downsample,
    ResnetBlock,
    RMSNorm,
    SinusoidalPosEmb,
    Unet,
    Upsample,
)

__all__ = ["Block", "Downsample", "ResnetBlock", "RMSNorm", "SinusoidalPosEmb", "Unet", "Upsample"]
