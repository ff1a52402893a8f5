"""MobileNet V1/V2/V3 with optional SE / ECA / CBAM attention (pure PyTorch).

V2 and V3 reproduce torchvision's module tree and parameter names, so torchvision
state_dicts load with :func:`load_weights` or ``weights=path``. Nothing is downloaded.
"""
from .attention import ATTENTION_TYPES, CBAM, ECA, SqueezeExcitation, make_attention
from .blocks import BlockViews, DepthwiseSeparable, InvertedResidual
from .layers import Conv2dNormActivation, make_divisible
from .mobilenet_v1 import MobileNetV1, mobilenet_v1
from .mobilenet_v2 import MobileNetV2, mobilenet_v2
from .mobilenet_v3 import InvertedResidual as InvertedResidualV3
from .mobilenet_v3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small
from .profile import count_macs, count_params, measure_latency
from .weights import load_weights

MODELS = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mobilenet_v3_large": mobilenet_v3_large,
}


def get_model(name: str, **kwargs):
    """Build a model by name (keys of :data:`MODELS`)."""
    try:
        return MODELS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}") from None


__all__ = [
    "ATTENTION_TYPES", "CBAM", "ECA", "SqueezeExcitation", "make_attention",
    "BlockViews", "DepthwiseSeparable", "InvertedResidual", "InvertedResidualV3",
    "Conv2dNormActivation", "make_divisible",
    "MobileNetV1", "MobileNetV2", "MobileNetV3",
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "count_macs", "count_params", "measure_latency", "load_weights", "MODELS", "get_model",
]
