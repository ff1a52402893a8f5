"""NumPy int64 reference of the int8 conv semantics (see mobilekernels._qops), written from the
spec and independent of the package: the integer part in int64 (checked to fit int32), the
requantization in fp32 exactly as specified, np.rint = round half to even."""
from __future__ import annotations

import numpy as np

RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def requant_scales(x_scale: float, w_scale: np.ndarray, y_scale: float) -> np.ndarray:
    return (np.float64(x_scale) * np.asarray(w_scale, np.float32).astype(np.float64) / np.float64(y_scale)).astype(np.float32)


def requantize(acc: np.ndarray, scale: np.ndarray, y_zp: int, y_min: int, y_max: int) -> np.ndarray:
    assert acc.min() >= -2**31 and acc.max() < 2**31, "reference: true accumulator outside int32"
    f = acc.astype(np.int32).astype(np.float32) * scale.astype(np.float32)  # fp32 product
    return np.clip(np.rint(f).astype(np.float64) + y_zp, y_min, y_max).astype(np.int64)


def qconv1x1(x, w, w_zp, bias, x_scale, x_zp, w_scale, y_scale, y_zp, y_min, y_max):
    """x [M, K] ints, w [N, K] ints, w_zp / w_scale / bias [N] -> y [M, N] int64."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1)
    acc = (x - x_zp) @ w.T + np.asarray(bias, np.int64)
    return requantize(acc, requant_scales(x_scale, w_scale, y_scale), y_zp, y_min, y_max)


def qdwconv2d(x, w, w_zp, bias, x_scale, x_zp, w_scale, y_scale, y_zp, y_min, y_max,
              stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """x [N, H, W, C] ints (NHWC), w [C*m, kh, kw] ints -> y [N, OH, OW, C*m] int64.
    Padding reads x_zp, i.e. contributes nothing."""
    x = np.asarray(x, np.int64) - x_zp
    n, h, wd, c = x.shape
    cout, kh, kw = w.shape
    m = cout // c
    pt, pb, pl, pr = padding
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, c), np.int64)
    xp[:, pt:pt + h, pl:pl + wd, :] = x
    xp = np.repeat(xp, m, axis=3)  # output channel oc reads input channel oc // m
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    wq = np.asarray(w, np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1, 1)
    acc = np.zeros((n, oh, ow, cout), np.int64) + np.asarray(bias, np.int64)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            patch = xp[:, r0:r0 + stride[0] * (oh - 1) + 1:stride[0], c0:c0 + stride[1] * (ow - 1) + 1:stride[1], :]
            acc += patch * wq[:, i, j]
    return requantize(acc, requant_scales(x_scale, w_scale, y_scale), y_zp, y_min, y_max)
