"""One-node ONNX depthwise model (Conv group=C + Clip(0, 6), NCHW: ONNX Runtime's fp32 CPU
provider takes NCHW) run by ONNX Runtime with the session settings of `python -m mobilekernels
bench` (intra-op threads, no spinning). bench_dwconv.py's ORT column and its test use it."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch


def build_model(c: int, h: int, w: int, weight: torch.Tensor, bias: torch.Tensor, stride: int):
    """An onnx ModelProto: x [1,C,H,W] -> Conv(kxk, stride, pads k//2, group C) -> Clip(0, 6) -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = weight.shape[-1]
    p = k // 2
    oh, ow = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    inits = [numpy_helper.from_array(weight.detach().float().numpy(), "w"),
             numpy_helper.from_array(bias.detach().float().numpy(), "b"),
             helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("hi", TensorProto.FLOAT, [], [6.0])]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["conv"], group=c, kernel_shape=[k, k],
                              strides=[stride, stride], pads=[p, p, p, p]),
             helper.make_node("Clip", ["conv", "lo", "hi"], ["y"])]
    graph = helper.make_graph(nodes, "dwconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, oh, ow])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def runner(x_nchw: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, threads: int):
    """``run()`` -> NCHW output (a fresh array per call, like torch's and ours; the input is passed
    as a numpy view, no copy)."""
    import onnx

    from mobilekernels.benchmark import _ort_session

    _, c, h, w = x_nchw.shape
    x = x_nchw.contiguous()
    with tempfile.TemporaryDirectory() as d:  # the session reads the file once, at creation
        path = Path(d) / "dw.onnx"
        onnx.save(build_model(c, h, w, weight, bias, stride), str(path))
        run = _ort_session(path, threads)
    return lambda: run(x)
