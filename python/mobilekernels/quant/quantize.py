"""``mobilekernels.quantize(model, calibration_data)``: post-training static int8 quantization.

Supported model layouts: an ``nn.Sequential``, or a module with ``features`` (Sequential),
optional ``avgpool`` and ``classifier`` whose forward is features -> global average pool ->
flatten -> classifier (mobilekernels' MobileNet V1/V2/V3, torchvision's MobileNetV2/V3).

Steps: BatchNorm folded into the preceding conv (``nn.block._fold_bn``); weights int8,
symmetric, per output channel; activations uint8, per tensor, asymmetric, ranges from an
observer ("minmax", "percentile" or "mse") run over ``calibration_data``. The input is quantized once;
between layers activations stay uint8 channels_last; the output is dequantized.
``QuantizedModel.summary()`` lists where every layer runs:

* our int8 kernels: 1x1 convs and Linear layers (``qconv1x1``), depthwise convs (``qdwconv2d``),
  both with ReLU / ReLU6 fused; other groups=1 convs such as the 3x3 stem as a uint8 im2col
  gathered in torch + ``qconv1x1``; SE's fc1 / fc2, ECA's channel conv (as a banded C x C
  1x1 conv), CBAM's MLP and 7x7 spatial conv (im2col); inverted-residual and depthwise-separable
  blocks whose body is ``[1x1,] depthwise, 1x1`` (MobileNetV1/V2, the V3 blocks without SE;
  ReLU / ReLU6 as clamps, Hardswish as a lookup table on the block's scratch rows) run as one
  fused ``qinverted_residual`` call, residual add included, bit-exact to the layers run one by
  one (``fuse_blocks=False`` turns it off);
* int8 in torch integer ops: the input quantization, residual adds and the attention blocks'
  ``x * gate`` (integer codes, fp32 requantization, half to even), global average pooling
  (integer sum), CBAM's max pools, logit add and channel max / mean (integer max / sum),
  elementwise activations outside fused blocks (Hardswish, Hardsigmoid, Sigmoid...) as 256-entry
  uint8 lookup tables;
* float fallback (dequantize -> float module -> quantize): grouped non-depthwise convs and any
  module not listed above (e.g. MaxPool2d).

``QuantizedModel.reference(x)`` is the same network in float with fake quantization at the same points and scales (the numerical reference of the tests).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Optional

import torch
from torch import nn

from .._eager import unobserved
from ..nn.block import _fold_bn
from ..models.attention import CBAM, ECA
from .modules import FLOAT, KERNEL, TORCH_INT, QAvgPool, QBlock, QCBAM, QConv, QECA, QFlatten, QFloat, QLut, QSE
from .observers import OBSERVERS, dequantize_tensor, fake_quantize, make_observer, quantize_tensor
from .replay import build_plan, structure_changed

__all__ = ["quantize", "QuantizedModel"]

_FUSED = {nn.ReLU: "relu", nn.ReLU6: "relu6"}
_ELEMENTWISE = (nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.SiLU, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ReLU,
                nn.ReLU6, nn.Hardtanh, nn.ELU)
_SKIP = (nn.Dropout, nn.Identity)


class QuantizedModel(nn.Module):
    """float in -> quantize once -> int8 steps -> dequantize -> float out."""

    def __init__(self, steps: list, flatten_output: bool) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.flatten_output = flatten_output
        self.register_buffer("in_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("in_zp", torch.tensor(0, dtype=torch.int64))
        self.observer = None
        # Eager batch >= 1 CPU calls replay the network as a flat list of C++ calls built on the
        # first call of an input shape (quant/replay.py); False runs every step's forward_int.
        self.replay = True

    def in_qparams(self) -> tuple[float, int]:
        return float(self.in_scale), int(self.in_zp)

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        y = y.contiguous()
        return y.flatten(1) if self.flatten_output and y.dim() == 4 else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.__dict__.get("_replay_plan")
        replay = (type(x) is torch.Tensor and getattr(self, "replay", True) and x.dim() == 4 and x.is_floating_point()
                  and x.device.type == "cpu" and x.shape[0] > 0 and unobserved())
        if replay and plan is not None and plan.current(x):  # the common call: a few microseconds of checks
            return self._finish(plan.run(x))
        with torch.no_grad():
            return self._forward_steps(x, replay)

    def _forward_steps(self, x: torch.Tensor, replay: bool) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise TypeError(f"expected a float [N, C, H, W] tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        s, z = self.in_qparams()
        q = quantize_tensor(x.float().contiguous(memory_format=torch.channels_last), s, z)
        record = []  # what each step produced: the plan is built from (and checked against) it
        for st in self.steps:
            q, s, z = st.forward_int(q, s, z)
            record.append((tuple(q.shape), s, z))
        if replay:
            self.__dict__["_replay_plan"] = build_plan(self, x, record)
        return self._finish(dequantize_tensor(q, s, z))

    def __getstate__(self):
        state = super().__getstate__().copy()
        state.pop("_replay_plan", None)  # raw pointers and a lock: rebuilt on the next call
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        _share_scalar_buffers(self)  # pickling and deepcopy keep shared storage, not views

    def _apply(self, fn, recurse=True):
        structure_changed()  # .to() / .float() write buffers without the registration hooks
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def reference(self, x: torch.Tensor, mode: str = "fake") -> torch.Tensor:
        """The float network with fake quantization (``mode="fake"``) at every activation the
        int8 model quantizes, same scales, dequantized int8 weights; ``mode="float"`` is not
        available after quantization (float weights are dropped)."""
        if mode != "fake":
            raise ValueError("only mode='fake' is available on a quantized model")
        return self._run_float(x, "fake")

    def _run_float(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        x = x.float()
        if mode == "observe":
            self.observer.update(x)
        elif mode == "fake":
            x = fake_quantize(x, *self.in_qparams())
        for st in self.steps:
            x = st.forward_float(x, mode)
        return self._finish(x)

    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = [("input", "float input", TORCH_INT, "quantized once to uint8 (per tensor)")]
        rows += [r for st in self.steps for r in st.rows()]
        rows.append(("output", "", TORCH_INT, "dequantized to float"))
        return rows

    def summary(self) -> str:
        """Table: layer, original module, where it runs, note; then counts per place."""
        rows = [("layer", "was", "runs", "note")] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        body = rows[1:]
        n = {k: sum(r[2] == k for r in body) for k in (KERNEL, TORCH_INT, FLOAT)}
        fused = sum(1 for m in self.modules() if isinstance(m, QBlock) and m.is_fused())
        lines.append(f"{n[KERNEL]} layers int8 on mobilekernels kernels ({fused} inverted-residual blocks fused into "
                     f"qinverted_residual), {n[TORCH_INT]} int8 in torch integer ops, "
                     f"{n[FLOAT]} float fallbacks (dequantize -> float -> quantize)")
        plan = self.__dict__.get("_replay_plan")  # the replay line goes above the counts (kept last)
        if not getattr(self, "replay", True):
            lines.insert(-1, "replay off: every call runs the steps one by one")
        elif plan is None:
            lines.insert(-1, "eager CPU calls replay the network as one list of C++ calls, built on the first call of "
                         "an input shape")
        else:
            py = plan.python_steps
            lines.insert(-1, f"replayed for input {tuple(plan.in_shape)}: {plan.calls} C++ calls"
                         + (f", {len(py)} steps in Python between them ({', '.join(py)})" if py else ", no Python step"))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# building the steps


def _is_block(m: nn.Module) -> bool:
    body = getattr(m, "conv", None)
    if not isinstance(body, nn.Sequential):
        body = getattr(m, "block", None)
    return isinstance(body, nn.Sequential) and hasattr(m, "use_res_connect")


def _is_se(m: nn.Module) -> bool:
    """mobilekernels' / torchvision's SqueezeExcitation: x * gate(fc2(act(fc1(avgpool(x)))))."""
    return ("SqueezeExcitation" in type(m).__name__
            and all(isinstance(getattr(m, a, None), nn.Conv2d) and getattr(m, a).kernel_size == (1, 1)
                    and getattr(m, a).groups == 1 for a in ("fc1", "fc2"))
            and isinstance(getattr(m, "avgpool", None), nn.AdaptiveAvgPool2d) and m.avgpool.output_size in (1, (1, 1))
            and isinstance(getattr(m, "activation", None), nn.Module)
            and isinstance(getattr(m, "scale_activation", None), nn.Module))


def _is_eca(m: nn.Module) -> bool:
    """mobilekernels' ECA with its standard 1-D conv (stride 1, no dilation, zero padding)."""
    c = getattr(m, "conv", None)
    return (isinstance(m, ECA) and isinstance(c, nn.Conv1d) and c.stride == (1,) and c.dilation == (1,)
            and c.padding_mode == "zeros" and c.bias is None and c.in_channels == c.out_channels == 1)


def _is_cbam(m: nn.Module) -> bool:
    """mobilekernels' CBAM with a ReLU MLP and a zero-padded spatial conv."""
    return (isinstance(m, CBAM) and type(m.activation) is nn.ReLU and type(m.spatial_conv) is nn.Conv2d
            and m.spatial_conv.padding_mode == "zeros" and m.spatial_conv.groups == 1)


def _leaves(seq: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    out = []
    for n, m in seq.named_children():
        full = f"{prefix}.{n}" if prefix else n
        if isinstance(m, nn.Sequential) and not _is_block(m):
            out += _leaves(m, full)
        else:
            out.append((full, m))
    return out


def _build(leaves: list[tuple[str, nn.Module]]) -> list:
    steps: list = []
    i = 0
    while i < len(leaves):
        name, m = leaves[i]
        i += 1
        if isinstance(m, _SKIP):
            continue
        if type(m) in (nn.Conv2d, nn.Linear):
            bn = None
            if type(m) is nn.Conv2d and i < len(leaves) and isinstance(leaves[i][1], nn.BatchNorm2d):
                bn = leaves[i][1]
                i += 1
            act, post = "none", None
            if i < len(leaves) and type(leaves[i][1]) in _FUSED:
                act = _FUSED[type(leaves[i][1])]
                i += 1
            elif i < len(leaves) and isinstance(leaves[i][1], _ELEMENTWISE):
                post = leaves[i][1]
                i += 1
            what = type(m).__name__ + ("+BN" if bn is not None else "") + \
                ({"relu": "+ReLU", "relu6": "+ReLU6"}.get(act, "")) + (f"+{type(post).__name__}" if post else "")
            if type(m) is nn.Linear:
                steps.append(QConv(name, what, m.weight, m.bias, act=act, post=post))
            else:
                if m.padding_mode != "zeros":
                    steps.append(QFloat(name, m, f"padding_mode={m.padding_mode}"))
                    continue
                w, b = _fold_bn(m, bn)
                steps.append(QConv(name, what, w, b, m.stride, m.padding, m.dilation, m.groups, act, post))
        elif _is_block(m):
            body = getattr(m, "conv", None)
            if not isinstance(body, nn.Sequential):
                body = m.block
            pre = name + (".conv" if body is getattr(m, "conv", None) else ".block")
            steps.append(QBlock(name, type(m).__name__, _build(_leaves(body, pre)), bool(m.use_res_connect)))
        elif _is_se(m):
            steps.append(QSE(name, m))
        elif _is_eca(m):
            steps.append(QECA(name, m))
        elif _is_cbam(m):
            steps.append(QCBAM(name, m))
        elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            steps.append(QAvgPool(name))
        elif isinstance(m, nn.Flatten):
            steps.append(QFlatten(name))
        elif isinstance(m, _ELEMENTWISE):
            steps.append(QLut(name, m))
        else:
            why = "attention block: no int8 path yet" if hasattr(m, "scale_activation") else "no int8 path"
            steps.append(QFloat(name, m, why))
    return steps


def _plan(model: nn.Module) -> tuple[list, bool]:
    if isinstance(model, nn.Sequential):
        steps = _build(_leaves(model, ""))
        return steps, any(isinstance(s, QFlatten) for s in steps)
    feats, head = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(feats, nn.Sequential) and isinstance(head, nn.Module):
        pool = getattr(model, "avgpool", None)
        if pool is not None and not (isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1))):
            raise ValueError(f"unsupported avgpool {pool}: expected AdaptiveAvgPool2d(1)")
        head_leaves = _leaves(head, "classifier") if isinstance(head, nn.Sequential) else [("classifier", head)]
        leaves = _leaves(feats, "features") + [("avgpool", pool or nn.AdaptiveAvgPool2d(1)),
                                               ("flatten", nn.Flatten())] + head_leaves
        return _build(leaves), True
    raise ValueError(f"quantize supports nn.Sequential models and models with .features (Sequential) and "
                     f".classifier (MobileNet layout); got {type(model).__name__}")


def _batches(data: Iterable, progress: bool):
    try:
        it = iter(data)
    except TypeError:
        raise TypeError(f"calibration_data must be an iterable of tensors or (input, ...) tuples, "
                        f"got {type(data).__name__}") from None
    if progress:
        try:
            from tqdm.auto import tqdm
            total = len(data) if hasattr(data, "__len__") else None
            it = tqdm(it, total=total, desc="calibrating", unit="batch", leave=False)
        except ImportError:
            pass
    for b in it:
        x = b[0] if isinstance(b, (tuple, list)) else b
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise TypeError(f"calibration batches must be [N, C, H, W] tensors (or tuples whose first item is "
                            f"one), got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
        yield x


def _share_scalar_buffers(qm: nn.Module) -> None:
    """Re-register every 0-d buffer (the scales and zero points, ~400 in V3-Large) as a view of
    one flat tensor per dtype, same values. Views share their base's version counter, so the
    replay plan notices an in-place change of any of them by reading two counters
    (replay._version_owners) instead of hundreds."""
    by_dtype: dict = {}
    for mod in qm.modules():
        for name, t in mod._buffers.items():
            if t is not None and t.dim() == 0 and not t.is_inference() and t.device.type == "cpu":
                by_dtype.setdefault(t.dtype, []).append((mod, name, t))
    for dtype, items in by_dtype.items():
        flat = torch.stack([t.detach() for _, _, t in items])
        for i, (mod, name, _) in enumerate(items):
            mod._buffers[name] = flat[i]


def quantize(model: nn.Module, calibration_data: Iterable, observer: str = "minmax", *,
             percentile: float = 99.99, max_batches: Optional[int] = None, progress: bool = True,
             fuse_blocks: bool = True) -> QuantizedModel:
    """Post-training static int8 quantization of ``model`` (not modified; BN uses running stats).

    Args:
        model: an ``nn.Sequential`` or a MobileNet-layout model (see module docstring).
        calibration_data: iterable of float ``[N, C, H, W]`` batches, or of tuples whose first
            item is one (a ``DataLoader`` of ``(x, y)`` works). Must not be empty.
        observer: "minmax", "percentile" or "mse" (activation ranges: running min/max, quantiles,
            or the clipping range minimising the quantization MSE of a histogram; weights are
            always per-channel symmetric min-max).
        percentile: upper quantile in percent for the percentile observer.
        max_batches: stop calibrating after this many batches.
        progress: tqdm progress bar (when tqdm is installed).
        fuse_blocks: run qualifying inverted-residual blocks as one fused int8 call
            (``qinverted_residual``; same results, no expanded tensor).

    Returns:
        a :class:`QuantizedModel` (float in, float out); ``summary()`` tells what runs where.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize expects an nn.Module, got {type(model).__name__}")
    if observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    m = copy.deepcopy(model).eval()
    steps, flatten = _plan(m)
    qm = QuantizedModel(steps, flatten)
    for st in qm.modules():
        if isinstance(st, QBlock):
            st.fuse = bool(fuse_blocks)
    qm.observer = make_observer(observer, percentile)
    for st in qm.steps:
        st.start_observing(observer, percentile)
    seen = 0
    with torch.no_grad():
        for x in _batches(calibration_data, progress):
            if max_batches is not None and seen >= max_batches:
                break
            qm._run_float(x, "observe")
            seen += 1
    if seen == 0:
        raise ValueError("calibration_data is empty: quantize needs at least one batch of representative "
                         "inputs to calibrate the activation ranges")
    s, z = qm.observer.qparams()
    qm.in_scale.fill_(s)
    qm.in_zp.fill_(z)
    qm.observer = None
    for st in qm.steps:
        s, z = st.freeze(s, z)
    _share_scalar_buffers(qm)
    return qm
