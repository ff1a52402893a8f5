"""``QuantizedConv2d``: PyTorch quantized 1x1 / depthwise convs on our exact int8 kernels.

Takes and returns ``torch.quint8`` tensors (channels_last: read and written in place, no
copies). Semantics are those of ``mobilekernels._qops`` (fp32 requantization, round half to
even); the float bias of a torch module is quantized to int32 in units of
``x_scale * w_scale[oc]`` for the input scale seen at run time (the pack is rebuilt if the input
scale changes). Results equal PyTorch's ``x86`` / ``fbgemm`` engines within one quantization
step (they add the bias in float and may saturate int16 pair sums on AVX2), and our integer
reference exactly.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .. import _C, _qops
from .._checks import conv_padding
from ..qops import output_range, quantize_bias


class QuantizedConv2d(nn.Module):
    """int8 pointwise (1x1, stride 1, no padding, groups 1) or depthwise (groups == in_channels)
    convolution with an optional fused ReLU / ReLU6, on quint8 NCHW-shaped tensors.

    State (all in ``state_dict``): ``weight`` int8 ``[Cout, Cin/groups, kh, kw]``, ``w_scale``
    float32 ``[Cout]``, ``w_zero_point`` int32 ``[Cout]``, ``bias`` float32 ``[Cout]`` (or
    empty), ``packed`` (uint8 pack for the input scale ``packed_x_scale``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups: int = 1, scale: float = 1.0, zero_point: int = 0,
                 activation: str = "none"):
        super().__init__()
        kernel_size, stride, dilation = (tuple(v) if isinstance(v, (tuple, list)) else (v, v)
                                         for v in (kernel_size, stride, dilation))
        self.depthwise = groups == in_channels and groups > 1 or (groups == 1 and in_channels == 1 and kernel_size != (1, 1))
        pointwise = groups == 1 and kernel_size == (1, 1) and stride == (1, 1) and tuple(padding) in ((0, 0), (0, 0, 0, 0))
        if not (self.depthwise or pointwise):
            raise ValueError("QuantizedConv2d supports 1x1 convs (stride 1, no padding, groups 1) and depthwise "
                             f"convs (groups == in_channels); got kernel {kernel_size}, stride {stride}, "
                             f"padding {padding}, groups {groups}")
        if self.depthwise and out_channels % in_channels:
            raise ValueError(f"depthwise out_channels {out_channels} must be a multiple of in_channels {in_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
        self.pads = conv_padding(padding, kernel_size, stride, dilation)
        self.scale, self.zero_point = float(scale), int(zero_point)
        self.activation = activation
        output_range(activation, self.scale, self.zero_point, torch.uint8)  # validates
        cpg = 1 if self.depthwise else in_channels
        self.register_buffer("weight", torch.zeros(out_channels, cpg, *kernel_size, dtype=torch.int8))
        self.register_buffer("w_scale", torch.ones(out_channels))
        self.register_buffer("w_zero_point", torch.zeros(out_channels, dtype=torch.int32))
        self.register_buffer("bias", torch.zeros(0))
        self.register_buffer("packed", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("packed_x_scale", torch.zeros((), dtype=torch.float64))

    @classmethod
    def from_torch(cls, m: nn.Module, activation: Optional[str] = None) -> "QuantizedConv2d":
        """From ``torch.ao.nn.quantized.Conv2d`` (or ``intrinsic.quantized.ConvReLU2d``: ReLU fused)."""
        from torch.ao.nn.intrinsic.quantized import ConvReLU2d
        from torch.ao.nn.quantized import Conv2d

        if not isinstance(m, Conv2d):
            raise TypeError(f"from_torch expects torch.ao.nn.quantized.Conv2d, got {type(m).__name__}")
        if m.padding_mode != "zeros":
            raise ValueError(f"padding_mode {m.padding_mode!r} is not supported (zeros only)")
        if activation is None:
            activation = "relu" if isinstance(m, ConvReLU2d) else "none"
        padding = m.padding if not isinstance(m.padding, str) else m.padding
        q = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, padding, m.dilation, m.groups,
                m.scale, m.zero_point, activation)
        w = m.weight()
        if w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            scale = torch.full((m.out_channels,), w.q_scale(), dtype=torch.float32)
            zp = torch.full((m.out_channels,), w.q_zero_point(), dtype=torch.int32)
        elif w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric) and w.q_per_channel_axis() == 0:
            scale = w.q_per_channel_scales().to(torch.float32)
            zp = w.q_per_channel_zero_points().to(torch.int32)
        else:
            raise ValueError(f"unsupported weight quantization scheme {w.qscheme()}")
        if w.dtype != torch.qint8:
            raise ValueError(f"weights must be qint8, got {w.dtype}")
        with torch.no_grad():
            q.weight.copy_(w.int_repr())
            q.w_scale.copy_(scale)
            q.w_zero_point.copy_(zp)
            b = m.bias()
            q.bias = torch.zeros(0) if b is None else b.detach().to(torch.float32).clone()
        return q

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # bias and packed change size (no bias / not packed yet): take the incoming shapes.
        for name in ("bias", "packed"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        kind = "depthwise" if self.depthwise else "pointwise"
        return (f"{self.in_channels}, {self.out_channels}, {kind}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, pads={self.pads}, scale={self.scale}, zero_point={self.zero_point}, "
                f"activation={self.activation}")

    def _pack(self, x_scale: float) -> torch.Tensor:
        if self.packed.numel() == 0 or float(self.packed_x_scale) != x_scale:
            bias = quantize_bias(self.bias, x_scale, self.w_scale) if self.bias.numel() else None
            pack = _qops._qdwconv2d_pack_cpu if self.depthwise else _qops._qconv1x1_pack_cpu
            self.packed = pack(self.weight, self.w_scale, self.w_zero_point, bias)
            self.packed_x_scale = torch.tensor(x_scale, dtype=torch.float64)
        return self.packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.quint8:
            raise TypeError(f"QuantizedConv2d expects a torch.quint8 tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [N, {self.in_channels}, H, W], got {tuple(x.shape)}")
        if x.qscheme() != torch.per_tensor_affine:
            raise ValueError(f"input must be per-tensor quantized, got {x.qscheme()}")
        x_scale, x_zp = float(x.q_scale()), int(x.q_zero_point())
        packed = self._pack(x_scale)
        y_min, y_max = output_range(self.activation, self.scale, self.zero_point, torch.uint8)
        x = x.contiguous(memory_format=torch.channels_last)  # no copy when already channels_last
        n, c, h, w = x.shape
        if self.depthwise:
            n, c, h, w, mult, oh, ow = _qops.dw_geometry(x.shape, self.out_channels, self.kernel_size, self.stride,
                                                         self.pads, self.dilation)
        else:
            oh, ow = h, w
        out = torch._empty_affine_quantized((n, self.out_channels, oh, ow), scale=self.scale,
                                            zero_point=self.zero_point, dtype=torch.quint8,
                                            memory_format=torch.channels_last)
        if out.numel() == 0:
            return out
        nt = torch.get_num_threads()
        # Quantized tensors cannot enter the plain-tensor torch ops without an int_repr() copy, so
        # the module calls the extension directly on the (validated) buffers.
        if self.depthwise:
            _C.q8_dwconv(packed.data_ptr(), packed.numel(), x.data_ptr(), n, h, w, c, mult, *self.kernel_size,
                         *self.stride, *self.dilation, self.pads[0], self.pads[2], oh, ow, x_scale, x_zp, False,
                         self.scale, self.zero_point, False, y_min, y_max, out.data_ptr(), nt)
        else:
            _C.q8_gemm(packed.data_ptr(), packed.numel(), x.data_ptr(), n * h * w, c, self.out_channels, x_scale,
                       x_zp, False, self.scale, self.zero_point, False, y_min, y_max, out.data_ptr(), nt)
        return out
