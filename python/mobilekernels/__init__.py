"""mobilekernels: hand-optimized CPU kernels for MobileNet-style CNNs, as PyTorch ops.

Importing the package registers the ``torch.ops.mobilekernels.*`` operators. Subpackages:
``ops`` (typed functional wrappers), ``nn`` (drop-in modules), ``models``, ``prune``,
``distill``. ``info()`` reports CPU features, compiled paths and the active dispatch level;
``set_isa(name)`` forces a path (also the ``MOBILEKERNELS_ISA`` environment variable).
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import _ops  # noqa: F401  (registers the torch ops)
from . import _pwops  # noqa: F401  (pointwise + fused inverted-residual ops)
from . import _stemops  # noqa: F401  (fp32 small-Cin dense conv: the stem)
from . import _qops  # noqa: F401  (registers the int8 torch ops)
from ._dispatch import get_isa, set_isa, use_isa
from ._info import info
from . import ops, nn  # noqa: E402
from .converter import ConvertedModel, convert  # noqa: E402
from . import qops  # noqa: E402  (int8 wrappers)
from .quant import QuantizedModel, quantize  # noqa: E402  (post-training int8)

__all__ = ["get_isa", "set_isa", "use_isa", "info", "ops", "nn", "convert", "ConvertedModel", "__version__"]
__all__ += ["qops"]
__all__ += ["quantize", "QuantizedModel"]
