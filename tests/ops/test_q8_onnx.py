"""ONNX's own backend test vectors for QLinearConv and ConvInteger, run through our ops.

The installed onnx wheel does not ship the node test data folders (``test_qlinearconv*``), so
the vectors are taken from the generators that write them (``onnx.backend.test.case.node``):
their ``expect(...)`` is intercepted to capture inputs, attributes and expected outputs. Cases
within our ops' scope (1x1 with group 1 -> qconv1x1; depthwise / single-channel -> qdwconv2d)
run; others are reported as skipped. ConvInteger's int32 output is compared through an int8
output with unit scales (exact while |acc| <= 127, checked). A seeded sweep also compares
QLinearConv against onnx's ReferenceEvaluator.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402

from mobilekernels import qops  # noqa: E402


def _collect(module_name: str, cls_name: str):
    import importlib

    mod = importlib.import_module(f"onnx.backend.test.case.node.{module_name}")
    cases = []

    def fake_expect(node, inputs, outputs, name, **_):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        cases.append((name, node.op_type, list(node.input), inputs, outputs[0], attrs))

    original = mod.expect
    mod.expect = fake_expect
    try:
        cls = getattr(mod, cls_name)
        for attr in dir(cls):
            if attr.startswith("export"):
                getattr(cls, attr)()
    finally:
        mod.expect = original
    return cases


CASES = _collect("qlinearconv", "QLinearConv") + _collect("convinteger", "ConvInteger")


def _tensor(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def run_qlinearconv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, attrs, y_dtype):
    """Our op on one QLinearConv (or ConvInteger mapped to unit scales) node; None if out of scope."""
    group = attrs.get("group", 1)
    pads = attrs.get("pads", [0, 0, 0, 0])
    strides = attrs.get("strides", [1, 1])
    dil = attrs.get("dilations", [1, 1])
    if x.ndim != 4 or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    cout, cpg, kh, kw = w.shape
    c = x.shape[1]
    xt = _tensor(x).contiguous(memory_format=torch.channels_last)
    ws = torch.as_tensor(np.asarray(w_scale, np.float32).reshape(-1))
    wz = torch.as_tensor(np.asarray(w_zp).astype(np.int32).reshape(-1))
    out_dtype = torch.uint8 if y_dtype == np.uint8 else torch.int8
    y_zp = int(y_zp)
    lo, hi = (0, 255) if out_dtype == torch.uint8 else (-128, 127)
    if (kh, kw) == (1, 1) and group == 1 and pads == [0, 0, 0, 0] and list(strides) == [1, 1]:
        packed = qops.qconv1x1_pack(_tensor(w), ws, wz)
        y = torch.ops.mobilekernels.qconv1x1(xt, packed, cout, float(x_scale), int(x_zp), float(y_scale), y_zp,
                                             out_dtype, lo, hi)
    elif cpg == 1 and group == c:
        packed = qops.qdwconv2d_pack(_tensor(w), ws, wz)
        # ONNX pads are [top, left, bottom, right]; ours [top, bottom, left, right].
        y = torch.ops.mobilekernels.qdwconv2d(xt, packed, cout, [kh, kw], list(strides),
                                              [pads[0], pads[2], pads[1], pads[3]], list(dil), float(x_scale),
                                              int(x_zp), float(y_scale), y_zp, out_dtype, lo, hi)
    else:
        return None
    return y.contiguous().numpy()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_onnx_backend_vector(case):
    name, op, input_names, inputs, expected, attrs = case
    feed = dict(zip(input_names, inputs))
    if op == "QLinearConv":
        if "B" in feed or len(inputs) > 8:
            pytest.skip("bias input not mapped")
        got = run_qlinearconv(feed["x"], feed["x_scale"], feed["x_zero_point"], feed["w"], feed["w_scale"],
                              feed["w_zero_point"], feed["y_scale"], feed["y_zero_point"], attrs, expected.dtype)
    else:  # ConvInteger: int32 output; run with unit scales into int8 (exact while it fits)
        if np.abs(expected).max() > 127:
            pytest.skip("ConvInteger output does not fit the int8 carrier")
        x, w = inputs[0], inputs[1]
        x_zp = inputs[2] if len(inputs) > 2 else np.uint8(0)
        w_zp = inputs[3] if len(inputs) > 3 else np.zeros(1, w.dtype)
        got = run_qlinearconv(x, 1.0, x_zp, w, np.ones(1, np.float32), w_zp, 1.0, 0, attrs, np.int8)
    if got is None:
        pytest.skip(f"{name}: outside our ops' scope (general grouped conv)")
    np.testing.assert_array_equal(got.astype(np.int64), expected.astype(np.int64), err_msg=name)


def test_qlinearconv_vs_onnx_reference_evaluator():
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    for trial in range(6):
        dw = trial % 2 == 1
        c, cout = (8, 8) if dw else (12, 20)
        k = 3 if dw else 1
        x = rng.integers(0, 256, (1, c, 6, 7), dtype=np.uint8)
        w = rng.integers(-128, 128, (cout, 1 if dw else c, k, k), dtype=np.int8)
        x_scale, y_scale = np.float32(rng.uniform(0.01, 0.1)), np.float32(rng.uniform(0.05, 2.0))
        w_scale = rng.uniform(0.01, 0.05, cout).astype(np.float32)
        x_zp, y_zp = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256))
        w_zp = np.zeros(cout, np.int8)
        attrs = {"group": c if dw else 1, "pads": [1, 1, 1, 1] if dw else [0, 0, 0, 0]}
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], **attrs)
        expected = ReferenceEvaluator(node).run(None, {"x": x, "xs": x_scale, "xz": x_zp, "w": w, "ws": w_scale,
                                                       "wz": w_zp, "ys": y_scale, "yz": y_zp})[0]
        got = run_qlinearconv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, attrs, np.uint8)
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        # The reference evaluator requantizes in float64 (no fp32 product): ties and fp32
        # rounding of the product may differ by one step; anything more is a real bug.
        assert diff.max() <= 1, f"trial {trial}: max diff {diff.max()}"
        assert (diff > 0).mean() < 0.01, f"trial {trial}: {(diff > 0).mean():.3%} of outputs differ"
