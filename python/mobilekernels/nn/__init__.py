"""Drop-in ``nn.Module``s running on mobilekernels ops."""
from .depthwise import DepthwiseConv2d

__all__ = ["DepthwiseConv2d"]
