"""Whole float MobileNets as in-memory TFLite flatbuffers, run by LiteRT (``ai-edge-litert``),
whose interpreter hands float graphs to the XNNPACK delegate by default: the benchmark's
XNNPACK column.

The eval model is traced with ``torch.fx`` and its nodes mapped to TFLite builtins, NHWC
throughout: Conv2d (+ BatchNorm folded with the converter's ``_fold_bn``, + ReLU / ReLU6 /
Hardtanh(0, 6) fused as the conv's activation) -> CONV_2D or DEPTHWISE_CONV_2D; Hardswish ->
HARD_SWISH; Hardsigmoid -> the conv's bias + 3 with fused RELU6, then MUL by 1/6 (ADD 3, RELU6,
MUL 1/6 when not after a conv); add / mul -> ADD / MUL (broadcast); adaptive average pooling to
1x1 -> MEAN over H, W (keep_dims); flatten -> RESHAPE; Linear -> FULLY_CONNECTED; Dropout is
dropped. torch's symmetric conv padding is SAME only where SAME pads the same pixels (stride 1,
odd sizes at stride 2); elsewhere an explicit PAD precedes a VALID conv (XNNPACK fuses a zero
PAD into the conv). The flatbuffer is written with the schema classes LiteRT itself ships
(``ai_edge_litert.schema_py_generated``), so model and runtime agree on the format.

bench/tflite_dw.py exports one depthwise layer with it (bench/bench_dwconv.py's XNNPACK column).
"""
from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from .nn.block import _fold_bn


def torch_pads(size: int, k: int, s: int, p: int) -> tuple[int, int]:
    """(before, after) padding of one axis as torch's conv with symmetric ``padding=p`` uses it:
    ``after`` is only what the last output actually reads."""
    out = (size + 2 * p - k) // s + 1
    return p, max((out - 1) * s + k - size - p, 0)


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """(before, after) padding of TFLite's SAME (the odd pixel goes after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _is_relu6(m) -> bool:
    return isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and m.min_val == 0.0 and m.max_val == 6.0)


_ADD = (operator.add, torch.add)
_MUL = (operator.mul, torch.mul)
_RELU_FNS = (torch.relu, torch.nn.functional.relu)


class _Builder:
    """Tensors, constant buffers and operators of one TFLite subgraph."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as S

        self.S = S
        self.buffers = [S.BufferT()]  # buffer 0: the empty sentinel every model starts with
        self.tensors: list = []
        self.codes: dict[int, int] = {}
        self.code_list: list = []
        self.ops: list = []

    def tensor(self, name: str, shape, ttype=None, buf: int = 0, quant=None) -> int:
        """A tensor; ``quant`` = ``(scales, zero_points, axis)`` makes it a quantized one (one scale
        and zero point per tensor, or one per index of ``axis``)."""
        S = self.S
        ttype = S.TensorType.FLOAT32 if ttype is None else ttype
        t = S.TensorT(shape=[int(d) for d in shape], type=ttype, buffer=buf, name=name)
        if quant is not None:
            scales, zps, axis = quant
            t.quantization = S.QuantizationParametersT(scale=[float(v) for v in scales],
                                                       zeroPoint=[int(v) for v in zps], quantizedDimension=axis)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, arr: np.ndarray, quant=None) -> int:
        arr = np.ascontiguousarray(arr)
        self.buffers.append(self.S.BufferT(data=arr.view(np.uint8).ravel()))
        ttype = {np.dtype(np.int32): self.S.TensorType.INT32, np.dtype(np.int8): self.S.TensorType.INT8,
                 np.dtype(np.float32): self.S.TensorType.FLOAT32}[arr.dtype]
        return self.tensor(name, arr.shape, ttype, len(self.buffers) - 1, quant)

    def op(self, code: int, inputs: list[int], outputs: list[int], opt_type=0, opt=None) -> None:
        S = self.S
        if code not in self.codes:
            # builtin codes above 127 live in builtinCode; the deprecated byte says "look there"
            self.code_list.append(S.OperatorCodeT(deprecatedBuiltinCode=min(code, 127), builtinCode=code,
                                                  version=1))
            self.codes[code] = len(self.code_list) - 1
        self.ops.append(S.OperatorT(opcodeIndex=self.codes[code], inputs=inputs, outputs=outputs,
                                    builtinOptionsType=opt_type, builtinOptions=opt))

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        import flatbuffers

        S = self.S
        graph = S.SubGraphT(tensors=self.tensors, inputs=inputs, outputs=outputs, operators=self.ops, name="main")
        model = S.ModelT(version=3, operatorCodes=self.code_list, subgraphs=[graph], buffers=self.buffers,
                         description=description)
        b = flatbuffers.Builder(1 << 20)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _nhwc(shape) -> tuple:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)


def _sole_user(node):
    return next(iter(node.users)) if len(node.users) == 1 else None


def export(model: nn.Module, input_shape: tuple[int, int, int, int]) -> bytes:
    """TFLite flatbuffer of the eval-mode ``model`` for one NCHW ``input_shape``: input NHWC
    float32 ``[N, H, W, C]``, output the model's output (logits ``[N, classes]``). Raises
    ``NotImplementedError`` naming the first node it cannot map."""
    from torch.fx.passes.shape_prop import ShapeProp

    if model.training:
        raise ValueError("export needs an eval-mode model (BatchNorm is folded with its running statistics)")
    gm = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(input_shape))
    B = _Builder()
    S = B.S
    act_code = {None: S.ActivationFunctionType.NONE, "relu": S.ActivationFunctionType.RELU,
                "relu6": S.ActivationFunctionType.RELU6}
    env: dict = {}  # fx node -> tensor index (nodes folded into a producer share its tensor)

    def out_shape(node) -> tuple:
        return _nhwc(tuple(node.meta["tensor_meta"].shape))

    def new_out(node) -> int:
        return B.tensor(node.name, out_shape(node))

    def module(node):
        return gm.get_submodule(node.target) if node.op == "call_module" else None

    def act_of(node) -> str | None:
        """"relu" / "relu6" / "hardsigmoid" when ``node`` is that activation, else None."""
        m = module(node)
        if isinstance(m, nn.ReLU) or (node.op == "call_function" and node.target in _RELU_FNS):
            return "relu"
        if _is_relu6(m) or (node.op == "call_function" and node.target is torch.nn.functional.relu6):
            return "relu6"
        if isinstance(m, nn.Hardsigmoid):
            return "hardsigmoid"
        return None

    def scalar(name: str, v: float) -> int:
        return B.const(name, np.array([v], dtype=np.float32))

    def binary(code, opt_type, opt, a: int, b: int, out: int) -> None:
        B.op(code, [a, b], [out], opt_type, opt)

    def add_opt():
        return S.BuiltinOptions.AddOptions, S.AddOptionsT()

    def mul_opt():
        return S.BuiltinOptions.MulOptions, S.MulOptionsT()

    def conv(node, m: nn.Conv2d) -> None:
        # fold the BatchNorm and the activation that are this conv's only consumers
        last, bn = node, None
        user = _sole_user(last)
        if user is not None and isinstance(module(user), nn.BatchNorm2d):
            bn, last = module(user), user
        w, b = _fold_bn(m, bn) if (bn is not None or m.bias is not None) else (m.weight.detach().float(), None)
        if b is None:
            b = torch.zeros(w.shape[0])
        user = _sole_user(last)
        act = act_of(user) if user is not None else None
        if act is not None:
            last = user
        if act == "hardsigmoid":  # relu6(y + 3) / 6: the +3 into the bias, /6 as a MUL below
            b = b + 3.0
        x_node = node.args[0]
        n, c, h, wd = x_node.meta["tensor_meta"].shape
        k_h, k_w = m.kernel_size
        (s_h, s_w), (p_h, p_w), (d_h, d_w) = m.stride, m.padding, m.dilation
        if isinstance(m.padding, str) or m.padding_mode != "zeros":
            raise NotImplementedError(f"{node.name}: padding {m.padding!r} / {m.padding_mode}")
        pads_h, pads_w = torch_pads(h, (k_h - 1) * d_h + 1, s_h, p_h), torch_pads(wd, (k_w - 1) * d_w + 1, s_w, p_w)
        x = env[x_node]
        if (pads_h, pads_w) == ((0, 0), (0, 0)):
            padding = S.Padding.VALID
        elif (pads_h, pads_w) == (same_pads(h, (k_h - 1) * d_h + 1, s_h), same_pads(wd, (k_w - 1) * d_w + 1, s_w)):
            padding = S.Padding.SAME
        else:
            paddings = B.const(node.name + "_paddings", np.array([[0, 0], pads_h, pads_w, [0, 0]], dtype=np.int32))
            padded = B.tensor(node.name + "_padded", (n, h + sum(pads_h), wd + sum(pads_w), c))
            B.op(S.BuiltinOperator.PAD, [x, paddings], [padded], S.BuiltinOptions.PadOptions, S.PadOptionsT())
            x, padding = padded, S.Padding.VALID
        out = B.tensor(last.name if act != "hardsigmoid" else node.name, out_shape(node))
        fused = act_code["relu6" if act == "hardsigmoid" else act]
        bt = B.const(node.name + "_bias", b.detach().float().numpy())
        if m.groups == 1:
            wt = B.const(node.name + "_weight", w.permute(0, 2, 3, 1).numpy())  # OHWI
            opt = S.Conv2DOptionsT()
            code, opt_type = S.BuiltinOperator.CONV_2D, S.BuiltinOptions.Conv2DOptions
        elif m.groups == m.in_channels == m.out_channels:
            wt = B.const(node.name + "_weight", w.permute(1, 2, 3, 0).numpy())  # 1HWC
            opt = S.DepthwiseConv2DOptionsT()
            opt.depthMultiplier = 1
            code, opt_type = S.BuiltinOperator.DEPTHWISE_CONV_2D, S.BuiltinOptions.DepthwiseConv2DOptions
        else:
            raise NotImplementedError(f"{node.name}: grouped conv (groups={m.groups})")
        opt.padding, opt.strideH, opt.strideW = padding, s_h, s_w
        opt.dilationHFactor, opt.dilationWFactor = d_h, d_w
        opt.fusedActivationFunction = fused
        B.op(code, [x, wt, bt], [out], opt_type, opt)
        if act == "hardsigmoid":
            gated = B.tensor(last.name, out_shape(node))
            binary(S.BuiltinOperator.MUL, *mul_opt(), out, scalar(last.name + "_sixth", 1.0 / 6.0), gated)
            out = gated
        cur = node
        while True:  # the conv, its BN and its activation all name the one output tensor
            env[cur] = out
            if cur is last:
                break
            cur = _sole_user(cur)

    x_in = None
    result = None
    for node in gm.graph.nodes:
        if node in env:
            continue  # folded into a conv
        m = module(node)
        if node.op == "placeholder":
            if x_in is not None:
                raise NotImplementedError("more than one input")
            x_in = env[node] = B.tensor(node.name, _nhwc(input_shape))
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node):
                raise NotImplementedError("the model must return one tensor")
        elif isinstance(m, nn.Conv2d):
            conv(node, m)
        elif isinstance(m, nn.Dropout):
            env[node] = env[node.args[0]]
        elif isinstance(m, nn.BatchNorm2d):
            raise NotImplementedError(f"{node.name}: BatchNorm2d not after a conv")
        elif act_of(node) in ("relu", "relu6"):
            code = S.BuiltinOperator.RELU if act_of(node) == "relu" else S.BuiltinOperator.RELU6
            B.op(code, [env[node.args[0]]], [out := new_out(node)])
            env[node] = out
        elif act_of(node) == "hardsigmoid":
            shape = out_shape(node)
            t1, t2 = B.tensor(node.name + "_plus3", shape), B.tensor(node.name + "_relu6", shape)
            binary(S.BuiltinOperator.ADD, *add_opt(), env[node.args[0]], scalar(node.name + "_three", 3.0), t1)
            B.op(S.BuiltinOperator.RELU6, [t1], [t2])
            binary(S.BuiltinOperator.MUL, *mul_opt(), t2, scalar(node.name + "_sixth", 1.0 / 6.0),
                   out := new_out(node))
            env[node] = out
        elif isinstance(m, nn.Hardswish) or (node.op == "call_function"
                                              and node.target is torch.nn.functional.hardswish):
            B.op(S.BuiltinOperator.HARD_SWISH, [env[node.args[0]]], [out := new_out(node)],
                 S.BuiltinOptions.HardSwishOptions, S.HardSwishOptionsT())
            env[node] = out
        elif node.op == "call_function" and node.target in _ADD + _MUL and len(node.args) == 2 and not node.kwargs:
            a, b = node.args
            if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)):
                raise NotImplementedError(f"{node.name}: {node.target} with a constant")
            add = node.target in _ADD
            opt = add_opt() if add else mul_opt()
            binary(S.BuiltinOperator.ADD if add else S.BuiltinOperator.MUL, *opt, env[a], env[b],
                   out := new_out(node))
            env[node] = out
        elif isinstance(m, nn.AdaptiveAvgPool2d) or (
                node.op == "call_function" and node.target is torch.nn.functional.adaptive_avg_pool2d):
            size = m.output_size if m is not None else (node.args[1] if len(node.args) > 1
                                                        else node.kwargs["output_size"])
            if size not in (1, (1, 1), [1, 1]):
                raise NotImplementedError(f"{node.name}: adaptive_avg_pool2d to {size}")
            opt = S.ReducerOptionsT()
            opt.keepDims = True
            B.op(S.BuiltinOperator.MEAN, [env[node.args[0]], B.const(node.name + "_axes", np.array([1, 2], np.int32))],
                 [out := new_out(node)], S.BuiltinOptions.ReducerOptions, opt)
            env[node] = out
        elif (node.op == "call_function" and node.target is torch.flatten) or (
                node.op == "call_method" and node.target == "flatten"):
            src = node.args[0].meta["tensor_meta"].shape
            if len(src) == 4 and (src[2], src[3]) != (1, 1):
                raise NotImplementedError(f"{node.name}: flatten of an HxW > 1 map (NHWC order differs)")
            shape = out_shape(node)
            opt = S.ReshapeOptionsT()
            opt.newShape = list(shape)
            shape_t = B.const(node.name + "_shape", np.array(shape, np.int32))
            B.op(S.BuiltinOperator.RESHAPE, [env[node.args[0]], shape_t], [out := new_out(node)],
                 S.BuiltinOptions.ReshapeOptions, opt)
            env[node] = out
        elif isinstance(m, nn.Linear):
            bias = m.bias.detach().float() if m.bias is not None else torch.zeros(m.out_features)
            wt = B.const(node.name + "_weight", m.weight.detach().float().numpy())  # [out, in], as TFLite wants
            bt = B.const(node.name + "_bias", bias.numpy())
            B.op(S.BuiltinOperator.FULLY_CONNECTED, [env[node.args[0]], wt, bt], [out := new_out(node)],
                 S.BuiltinOptions.FullyConnectedOptions, S.FullyConnectedOptionsT())
            env[node] = out
        else:
            raise NotImplementedError(f"cannot map {node.op} {node.target} ({node.name}) to TFLite")
    return B.finish([x_in], [env[result]], f"mobilekernels export of {type(model).__name__}")


def interpreter(model: bytes, threads: int, xnnpack: bool = True):
    """A LiteRT interpreter with tensors allocated. ``xnnpack=False`` selects the op resolver
    without default delegates (TFLite's own kernels)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    return it


def undelegated_ops(it) -> list[str]:
    """``[]`` when one delegate node (XNNPACK's, by default: LiteRT logs "Created TensorFlow Lite
    XNNPACK delegate") runs the whole graph, from its input to its output; else the names of the
    graph's non-delegate nodes (LiteRT also lists the nodes a delegate replaced and does not mark
    them, so with a partial delegation this over-reports: it names the suspects)."""
    nodes = it._get_ops_details()  # noqa: SLF001 - the only node listing LiteRT exposes
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    x, y = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    if len(delegates) == 1 and x in delegates[0]["inputs"] and y in delegates[0]["outputs"]:
        return []
    return sorted({n["op_name"] for n in nodes if n["op_name"] != "DELEGATE"}) or ["(no delegate)"]


def runner(model: nn.Module, x_nchw: torch.Tensor, threads: int, xnnpack: bool = True):
    """``(invoke, output, undelegated)``: ``invoke()`` runs the exported model on ``x`` (copied in
    once as NHWC; the copy-in is not timed, the interpreter preallocates the output); ``output()``
    returns the result as a torch tensor; ``undelegated`` lists ops XNNPACK did not take."""
    return runner_of(export(model, tuple(x_nchw.shape)), x_nchw, threads, xnnpack)


def runner_of(flatbuffer: bytes, x_nchw: torch.Tensor, threads: int, xnnpack: bool = True):
    """:func:`runner` for an exported model whose one input is float32 NHWC (the int8 export's
    too: it quantizes inside the graph)."""
    it = interpreter(flatbuffer, threads, xnnpack)
    x = x_nchw.permute(0, 2, 3, 1).contiguous() if x_nchw.dim() == 4 else x_nchw.contiguous()
    it.set_tensor(it.get_input_details()[0]["index"], x.numpy())
    out_index = it.get_output_details()[0]["index"]

    def output() -> torch.Tensor:
        t = torch.from_numpy(it.get_tensor(out_index))
        return t.permute(0, 3, 1, 2) if t.dim() == 4 else t

    return it.invoke, output, undelegated_ops(it)
