"""One-op TFLite depthwise model (built in memory) run by LiteRT, whose interpreter hands float
models to the XNNPACK delegate by default. bench_dwconv.py's XNNPACK column and its test use it.

The flatbuffer is written with the schema classes ai-edge-litert itself ships
(``ai_edge_litert.schema_py_generated``), so model and runtime always agree on the format.
"""
from __future__ import annotations

import numpy as np
import torch


def torch_pads(size: int, k: int, s: int, p: int) -> tuple[int, int]:
    """(before, after) padding of one axis as torch's conv with symmetric ``padding=p`` uses it:
    ``after`` is only what the last output actually reads (it can be less than p)."""
    out = (size + 2 * p - k) // s + 1
    return p, max((out - 1) * s + k - size - p, 0)


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """(before, after) padding of TFLite's SAME (the odd pixel goes after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def build_model(h: int, w: int, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> tuple[bytes, bool]:
    """``(flatbuffer, uses_pad_op)`` of NHWC [1,H,W,C] float32 -> DEPTHWISE_CONV_2D (kxk, stride,
    depth_multiplier 1, bias, fused RELU6) with torch's ``padding=k//2``. SAME when its padding is
    torch's (stride 1, odd sizes at stride 2); else an explicit PAD before a VALID conv (SAME puts
    the odd pixel after, torch before: 112 -> 56 at stride 2 would read different pixels)."""
    from ai_edge_litert import schema_py_generated as S

    c, _, k, _ = weight.shape
    p = k // 2
    pads_h, pads_w = torch_pads(h, k, stride, p), torch_pads(w, k, stride, p)
    use_pad = (pads_h, pads_w) != (same_pads(h, k, stride), same_pads(w, k, stride))
    oh, ow = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1

    buffers = [S.BufferT()]  # buffer 0: the empty sentinel every model starts with

    def const(arr: np.ndarray) -> int:
        buffers.append(S.BufferT(data=np.ascontiguousarray(arr).view(np.uint8).ravel()))
        return len(buffers) - 1

    tensors = []

    def tensor(name, shape, ttype=S.TensorType.FLOAT32, buf=0) -> int:
        tensors.append(S.TensorT(shape=list(shape), type=ttype, buffer=buf, name=name))
        return len(tensors) - 1

    x = tensor("x", (1, h, w, c))
    # TFLite depthwise filter layout: [1, KH, KW, C * depth_multiplier]
    wt = tensor("w", (1, k, k, c), buf=const(weight.detach().float().permute(1, 2, 3, 0).numpy()))
    bt = tensor("b", (c,), buf=const(bias.detach().float().numpy()))
    y = tensor("y", (1, oh, ow, c))
    codes, ops = [], []

    def op(code, inputs, outputs, opt_type, opt):
        codes.append(S.OperatorCodeT(deprecatedBuiltinCode=min(code, 127), builtinCode=code, version=1))
        ops.append(S.OperatorT(opcodeIndex=len(codes) - 1, inputs=inputs, outputs=outputs,
                               builtinOptionsType=opt_type, builtinOptions=opt))

    conv_in, padding = x, S.Padding.SAME
    if use_pad:
        paddings = np.array([[0, 0], pads_h, pads_w, [0, 0]], dtype=np.int32)
        pt = tensor("paddings", (4, 2), S.TensorType.INT32, const(paddings))
        conv_in = tensor("x_padded", (1, h + sum(pads_h), w + sum(pads_w), c))
        op(S.BuiltinOperator.PAD, [x, pt], [conv_in], S.BuiltinOptions.PadOptions, S.PadOptionsT())
        padding = S.Padding.VALID
    dw = S.DepthwiseConv2DOptionsT()
    dw.padding, dw.strideH, dw.strideW = padding, stride, stride
    dw.depthMultiplier, dw.fusedActivationFunction = 1, S.ActivationFunctionType.RELU6
    dw.dilationHFactor = dw.dilationWFactor = 1
    op(S.BuiltinOperator.DEPTHWISE_CONV_2D, [conv_in, wt, bt], [y], S.BuiltinOptions.DepthwiseConv2DOptions, dw)

    graph = S.SubGraphT(tensors=tensors, inputs=[x], outputs=[y], operators=ops, name="main")
    model = S.ModelT(version=3, operatorCodes=codes, subgraphs=[graph], buffers=buffers,
                     description="mobilekernels bench: one depthwise conv")
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), use_pad


def interpreter(model: bytes, threads: int, xnnpack: bool = True):
    """A LiteRT interpreter with tensors allocated. ``xnnpack=False`` selects the op resolver
    without default delegates (TFLite's own kernels), to show that the default one delegates."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    return it


def delegated(it) -> bool:
    """True when a delegate node (the default one is XNNPACK's: LiteRT logs "Created TensorFlow
    Lite XNNPACK delegate") took the whole graph, from its input to its output. LiteRT lists the
    replaced nodes too, the delegate node last."""
    nodes = it._get_ops_details()  # noqa: SLF001 - the only node listing LiteRT exposes
    last = nodes[-1]
    return (last["op_name"] == "DELEGATE" and it.get_input_details()[0]["index"] in last["inputs"]
            and it.get_output_details()[0]["index"] in last["outputs"])


def runner(x_nchw: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, threads: int,
           xnnpack: bool = True):
    """``(invoke, output, info)``: ``invoke()`` runs the model on ``x`` (set once, NHWC; the copy-in
    is not timed, the output buffer is preallocated by the interpreter); ``output()`` returns the
    result as an NCHW tensor; ``info`` says whether XNNPACK took the graph and if a PAD op is used."""
    _, _, h, w = x_nchw.shape
    model, use_pad = build_model(h, w, weight, bias, stride)
    it = interpreter(model, threads, xnnpack)
    it.set_tensor(it.get_input_details()[0]["index"], x_nchw.permute(0, 2, 3, 1).contiguous().numpy())
    out_index = it.get_output_details()[0]["index"]

    def output():
        return torch.from_numpy(it.get_tensor(out_index)).permute(0, 3, 1, 2)

    return it.invoke, output, {"xnnpack": delegated(it), "pad_op": use_pad}
