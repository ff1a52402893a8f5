"""Drop-in ``nn.Module``s running on mobilekernels ops."""
from .depthwise import DepthwiseConv2d
from .pointwise import Conv1x1, PointwiseConv2d
from .block import InvertedResidual
from .se_block import SEInvertedResidual  # fused block with squeeze-excitation (MobileNetV3)

__all__ = ["DepthwiseConv2d"]
__all__ += ["PointwiseConv2d", "Conv1x1", "InvertedResidual", "SEInvertedResidual"]
from .quantized import QuantizedConv2d  # int8 (quint8 in/out)
__all__ += ["QuantizedConv2d"]
from .quantized_block import QuantizedInvertedResidual  # fused int8 block
__all__ += ["QuantizedInvertedResidual"]
from .chained import ChainedSequential  # runs of our fp32 layers as one C++ call
__all__ += ["ChainedSequential"]
from .stem import StemConv2d  # dense small-Cin conv (the network stem), NCHW input read in place
__all__ += ["StemConv2d"]
