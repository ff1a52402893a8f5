"""Post-training static int8 quantization on mobilekernels' int8 kernels.

``quantize(model, calibration_data, observer="minmax" | "percentile" | "mse")`` returns a
:class:`QuantizedModel` (float in, float out); see :mod:`.quantize` for what runs where.
"""
from .observers import MinMaxObserver, MSEObserver, PercentileObserver, quantize_weight_per_channel
from .quantize import QuantizedModel, quantize

__all__ = ["quantize", "QuantizedModel", "MinMaxObserver", "PercentileObserver", "MSEObserver", "quantize_weight_per_channel"]
