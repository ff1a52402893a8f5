"""torch.library registration of the fused fp32 inverted residual with squeeze-excitation
(MobileNetV3's SE bneck): schemas, CPU impls, fake impls. Inference only.

``y = act_p(project(d * gate(fc2(act_se(fc1(mean_hw(d))))))) (+ x)``,
``d = act_d(dw(act_e(expand(x))))``:

  ``se_inverted_residual(x, expand_weight?, expand_bias?, dw_weight, dw_bias?, project_weight,
      project_bias?, fc1_weight, fc1_bias?, fc2_weight, fc2_bias?, stride, padding[4],
      act_expand, act_dw, act_project, act_se, gate, residual)``
  ``se_inverted_residual_packed(x, expand_packed?, dw_packed, project_packed, fc1_packed,
      fc2_packed, hidden_channels, out_channels, squeeze_channels, kernel, stride, padding[4],
      act_expand, act_dw, act_project, act_se, gate, residual, band_rows)``: on packs from
      ``conv1x1_pack`` / ``dwconv2d_pack`` (fc1/fc2 are 1x1 conv packs).

``gate``: ``hardsigmoid`` (relu6(v + 3) / 6, MobileNetV3) or ``sigmoid``; ``act_se`` one of the
fused activations (``relu`` in MobileNetV3). The C++ design (three passes, one depthwise-output
buffer) is described in ``csrc/ops/f32_se_inverted_residual_op.h``.
"""
from __future__ import annotations

import torch

from . import _C
from ._checks import empty_cl, enum_code
from ._ops import NS, _nhwc, pack_dw
from ._pwops import _act, _check_packed, _check_pw_weight, _ir_call, _ir_out_shape, _ir_weights, pack_pw

GATES = {"hardsigmoid": 0, "sigmoid": 1}

_lib = torch.library.Library(NS, "FRAGMENT")
_lib.define("se_inverted_residual(Tensor x, Tensor? expand_weight, Tensor? expand_bias, Tensor dw_weight, "
            "Tensor? dw_bias, Tensor project_weight, Tensor? project_bias, Tensor fc1_weight, Tensor? fc1_bias, "
            "Tensor fc2_weight, Tensor? fc2_bias, int stride, int[4] padding, str act_expand, str act_dw, "
            "str act_project, str act_se, str gate, bool residual) -> Tensor")
_lib.define("se_inverted_residual_packed(Tensor x, Tensor? expand_packed, Tensor dw_packed, Tensor project_packed, "
            "Tensor fc1_packed, Tensor fc2_packed, int hidden_channels, int out_channels, int squeeze_channels, "
            "int kernel, int stride, int[4] padding, str act_expand, str act_dw, str act_project, str act_se, "
            "str gate, bool residual, int band_rows) -> Tensor")


def _gate(name: str) -> int:
    return enum_code("gate", name, GATES)


def se_args(x_shape, cin, chid, cout, csq, kernel, stride, padding, acts, act_se, gate, residual, band_rows,
            expand):
    """Validate an SE-block call; return the C++ arguments (n .. band_rows) as a tuple."""
    return _se_call(x_shape, cin, chid, cout, csq, kernel, stride, padding, acts, act_se, gate, residual, band_rows,
                    expand)[1]


def _se_call(x_shape, cin, chid, cout, csq, kernel, stride, padding, acts, act_se, gate, residual, band_rows,
             expand):
    """:func:`se_args` and the output size: ((OH, OW), C++ arguments)."""
    if csq < 1:
        raise ValueError(f"squeeze_channels must be >= 1, got {csq}")
    act_se_code, gate_code = _act(act_se), _gate(gate)
    (oh, ow), (n, h, w, cin, chid, cout, k, s, pt, pb, pl, pr, expand, ae, ad, ap, residual, band_rows) = _ir_call(
        x_shape, cin, chid, cout, kernel, stride, padding, acts, residual, band_rows, expand)
    return (oh, ow), (n, h, w, cin, chid, cout, csq, k, s, pt, pb, pl, pr, expand, ae, ad, ap, act_se_code, gate_code,
                      residual, band_rows)


def se_inverted_residual_info(x_shape, in_channels, hidden_channels, out_channels, squeeze_channels, kernel=3,
                              stride=1, padding=None, acts=("hardswish", "hardswish", "none"), act_se="relu",
                              gate="hardsigmoid", residual=None, band_rows=0, expand=None) -> dict:
    """Kernels and depthwise-output buffer bytes of a fused SE-block call."""
    padding = [kernel // 2] * 4 if padding is None else list(padding)
    if residual is None:
        residual = stride == 1 and in_channels == out_channels
    expand = hidden_channels != in_channels if expand is None else expand
    return _C.f32_se_inverted_residual_info(*se_args(x_shape, in_channels, hidden_channels, out_channels,
                                                     squeeze_channels, kernel, stride, padding, acts, act_se, gate,
                                                     residual, band_rows, expand))


def run_se(x, epk, dpk, ppk, f1pk, f2pk, chid, cout, csq, kernel, stride, padding, acts, act_se, gate, residual,
           band_rows):
    from ._pwops import _check_x

    _check_x(x)
    cin = x.shape[1]
    expand = epk is not None
    if not expand and chid != cin:
        raise ValueError(f"without an expand conv the hidden width ({chid}) must equal the input channels ({cin})")
    (oh, ow), args = _se_call(x.shape, cin, chid, cout, csq, kernel, stride, padding, acts, act_se, gate, residual,
                              band_rows, expand)
    out = empty_cl((x.shape[0], cout, oh, ow), torch.float32)
    if x.shape[0] == 0:
        return out
    x = _nhwc(x)
    _C.f32_se_inverted_residual(x.data_ptr(), epk.data_ptr() if expand else 0, epk.numel() if expand else 0,
                                dpk.data_ptr(), dpk.numel(), ppk.data_ptr(), ppk.numel(), f1pk.data_ptr(),
                                f1pk.numel(), f2pk.data_ptr(), f2pk.numel(), out.data_ptr(), *args,
                                torch.get_num_threads())
    return out


def _se_weights(chid, f1w, f1b, f2w, f2b) -> int:
    _check_pw_weight("fc1_weight", f1w, f1b, chid)
    csq = int(f1w.shape[0])
    _check_pw_weight("fc2_weight", f2w, f2b, csq)
    if f2w.shape[0] != chid:
        raise ValueError(f"fc2_weight gives {f2w.shape[0]} channels, the block has {chid} hidden channels")
    return csq


def _se_inverted_residual_cpu(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, stride, padding, act_expand, act_dw,
                              act_project, act_se, gate, residual):
    chid = _ir_weights(x, ew, eb, dw, db, pw, pb)
    csq = _se_weights(chid, f1w, f1b, f2w, f2b)
    epk = pack_pw(ew, eb) if ew is not None else None
    return run_se(x, epk, pack_dw(dw, db), pack_pw(pw, pb), pack_pw(f1w, f1b), pack_pw(f2w, f2b), chid,
                  pw.shape[0], csq, dw.shape[2], stride, list(padding), (act_expand, act_dw, act_project), act_se,
                  gate, residual, 0)


@torch.library.register_fake(f"{NS}::se_inverted_residual")
def _se_inverted_residual_fake(x, ew, eb, dw, db, pw, pb, f1w, f1b, f2w, f2b, stride, padding, act_expand, act_dw,
                               act_project, act_se, gate, residual):
    return _ir_out_shape(x, dw.shape[2], stride, padding, pw.shape[0])


_lib.impl("se_inverted_residual", _se_inverted_residual_cpu, "CPU")


def _se_inverted_residual_packed_cpu(x, epk, dpk, ppk, f1pk, f2pk, hidden_channels, out_channels, squeeze_channels,
                                     kernel, stride, padding, act_expand, act_dw, act_project, act_se, gate, residual,
                                     band_rows):
    for name, t in (("expand_packed", epk), ("dw_packed", dpk), ("project_packed", ppk), ("fc1_packed", f1pk),
                    ("fc2_packed", f2pk)):
        if t is not None:
            _check_packed(name, t)
    if min(hidden_channels, out_channels, squeeze_channels) < 1:
        raise ValueError(f"hidden, out and squeeze channels must be >= 1, got {hidden_channels}, {out_channels}, "
                         f"{squeeze_channels}")
    return run_se(x, epk, dpk, ppk, f1pk, f2pk, hidden_channels, out_channels, squeeze_channels, kernel, stride,
                  list(padding), (act_expand, act_dw, act_project), act_se, gate, residual, band_rows)


@torch.library.register_fake(f"{NS}::se_inverted_residual_packed")
def _se_inverted_residual_packed_fake(x, epk, dpk, ppk, f1pk, f2pk, hidden_channels, out_channels, squeeze_channels,
                                      kernel, stride, padding, act_expand, act_dw, act_project, act_se, gate, residual,
                                      band_rows):
    return _ir_out_shape(x, kernel, stride, padding, out_channels)


_lib.impl("se_inverted_residual_packed", _se_inverted_residual_packed_cpu, "CPU")
