"""A TensorFlow.js graph model (``model.json`` and its weight files) run in torch.

Why by hand: no library reads a TF.js graph model without TensorFlow (1.7 GB installed), and
the pose model the project uses ships only in that format. The model is data, never code: the
topology is a list of nodes naming operations, and only the operations ``_ops`` names run (a graph
naming any other is refused at load). Each follows TensorFlow's documented semantics (NHWC
tensors, "SAME" padding, half-pixel bilinear resizing).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_NODES = 20_000  # a model.json larger than this is refused before it is read further
DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
QUANTISED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


class GraphError(ValueError):
    """The model.json or its weights are not a graph model this runner reads."""


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]  # (node name, output index); control inputs dropped
    attr: Mapping[str, Any]


def _input(ref: str) -> tuple[str, int]:
    name, _, index = ref.partition(":")
    return name, int(index or 0)


def _attr(value: Mapping[str, Any]) -> Any:
    """One attribute value of the topology's JSON form: int, float, bool, string, type or list."""
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "s" in items:
            return [base64.b64decode(v).decode() for v in items["s"]]
        return [float(v) for v in items.get("f", [])]
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "type" in value:
        return value["type"]
    return None


def parse_weights(manifest: Sequence[Mapping[str, Any]], data: bytes) -> dict[str, np.ndarray]:
    """Each weight of the manifest, dequantised, from the concatenated weight files."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for group in manifest:
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            if any(d < 0 for d in shape):
                raise GraphError(f"weight {w['name']!r} has a negative dimension")
            count = math.prod(shape)
            dtype = w["dtype"]
            if dtype not in DTYPES:
                raise GraphError(f"weight {w['name']!r}: dtype {dtype!r} is not read")
            q = w.get("quantization")
            stored = np.dtype(QUANTISED[q["dtype"]] if q else DTYPES[dtype])
            end = offset + count * stored.itemsize
            if end > len(data):
                raise GraphError(f"weight {w['name']!r} runs past the end of the weight files")
            array = np.frombuffer(data, stored, count, offset).astype(np.float64 if q else stored)
            if q and q["dtype"] != "float16":
                array = array * float(q["scale"]) + float(q["min"])
            out[w["name"]] = array.astype(DTYPES[dtype]).reshape(shape)
            offset = end
    if offset != len(data):
        raise GraphError(f"the weight files hold {len(data)} bytes, the manifest names {offset}")
    return out


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding of one side: the extra pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial(x: Any, kernel: tuple[int, int], strides: Sequence[int], padding: str, fill: float = 0.0,
             dilations: Sequence[int] = (1, 1, 1, 1)) -> Any:
    """NHWC -> NCHW, padded as TensorFlow pads for SAME."""
    import torch.nn.functional as nnf

    x = x.permute(0, 3, 1, 2)
    if padding == "SAME":
        top, bottom = _same_pads(x.shape[2], kernel[0], strides[1], dilations[1])
        left, right = _same_pads(x.shape[3], kernel[1], strides[2], dilations[2])
        if top or bottom or left or right:
            x = nnf.pad(x, (left, right, top, bottom), value=fill)
    elif padding != "VALID":
        raise GraphError(f"padding {padding!r} is not read")
    return x


def _activation(x: Any, ops: Sequence[str], extra: Sequence[Any], alpha: float) -> Any:
    import torch

    for op in ops:
        if op == "BiasAdd":
            x = x + extra[0]
        elif op == "Relu":
            x = torch.relu(x)
        elif op == "Relu6":
            x = torch.clamp(x, 0, 6)
        elif op == "LeakyRelu":
            x = torch.nn.functional.leaky_relu(x, alpha)
        elif op == "Sigmoid":
            x = torch.sigmoid(x)
        else:
            raise GraphError(f"fused op {op!r} is not read")
    return x


def _conv_weight(w: Any, depthwise: bool) -> Any:
    """TensorFlow's filter as torch's, in channels-last memory (oneDNN's fast layout on CPU):
    HWIO -> OIHW; a depthwise [h, w, in, multiplier] -> [in * multiplier, 1, h, w]."""
    import torch

    if depthwise:
        w = w.permute(2, 3, 0, 1).reshape(w.shape[2] * w.shape[3], 1, w.shape[0], w.shape[1])
    else:
        w = w.permute(3, 2, 0, 1)
    return w.contiguous(memory_format=torch.channels_last)


def _conv(x: Any, w: Any, attr: Mapping[str, Any], depthwise: bool) -> Any:
    import torch
    import torch.nn.functional as nnf

    strides, dil = attr.get("strides", [1, 1, 1, 1]), attr.get("dilations", [1, 1, 1, 1])
    if attr.get("data_format", "NHWC") != "NHWC":
        raise GraphError("only NHWC convolutions are read")
    kernel = (w.shape[2], w.shape[3])  # w is torch's layout (_conv_weight)
    x = _spatial(x, kernel, strides, attr.get("padding", "VALID"), dilations=dil)
    x = x.contiguous(memory_format=torch.channels_last)
    y = nnf.conv2d(x, w, stride=strides[1:3], dilation=dil[1:3], groups=x.shape[1] if depthwise else 1)
    return y.permute(0, 2, 3, 1)


def _fused(depthwise: bool) -> Callable[..., Any]:
    def run(attr: Mapping[str, Any], x: Any, w: Any, *extra: Any) -> Any:
        return _activation(_conv(x, w, attr, depthwise), attr.get("fused_ops", []), extra,
                           attr.get("leakyrelu_alpha", 0.2))

    return run


def _max_pool(attr: Mapping[str, Any], x: Any) -> Any:
    import torch.nn.functional as nnf

    k, s = attr["ksize"], attr["strides"]
    y = nnf.max_pool2d(_spatial(x, (k[1], k[2]), s, attr.get("padding", "VALID"), fill=-math.inf), (k[1], k[2]), s[1:3])
    return y.permute(0, 2, 3, 1)


def _resize(attr: Mapping[str, Any], x: Any, size: Any) -> Any:
    import torch.nn.functional as nnf

    if attr.get("align_corners") or not attr.get("half_pixel_centers"):
        raise GraphError("only half-pixel bilinear resizing is read")
    y = nnf.interpolate(x.permute(0, 3, 1, 2), size=tuple(int(v) for v in size.tolist()), mode="bilinear",
                      align_corners=False)
    return y.permute(0, 2, 3, 1)


def _strided_slice(attr: Mapping[str, Any], x: Any, begin: Any, end: Any, strides: Any) -> Any:
    index: list[Any] = []
    for i, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)):
        bit = 1 << i
        if attr.get("ellipsis_mask", 0) & bit:
            index.append(Ellipsis)
        elif attr.get("new_axis_mask", 0) & bit:
            index.append(None)
        elif attr.get("shrink_axis_mask", 0) & bit:
            index.append(int(b))
        else:
            if s <= 0:
                raise GraphError("only positive slice strides are read")
            index.append(slice(None if attr.get("begin_mask", 0) & bit else b,
                               None if attr.get("end_mask", 0) & bit else e, s))
    return x[tuple(index)]


def _gather_nd(attr: Mapping[str, Any], params: Any, indices: Any) -> Any:
    idx = indices.long()
    return params[tuple(idx[..., i] for i in range(idx.shape[-1]))]


def _reduce(how: str) -> Callable[..., Any]:
    def run(attr: Mapping[str, Any], x: Any, axes: Any) -> Any:
        dims = [int(a) for a in axes.reshape(-1).tolist()]
        keep = bool(attr.get("keep_dims", False))
        if how == "sum":
            return x.sum(dim=dims, keepdim=keep)
        for d in sorted((d % x.dim() for d in dims), reverse=True):
            x = x.amax(dim=d, keepdim=keep)
        return x

    return run


def _torch_dtype(tf_type: str) -> Any:
    import torch

    return {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_INT64": torch.int64, "DT_BOOL": torch.bool}[tf_type]


def _ops() -> dict[str, Callable[..., Any]]:
    import torch

    def binary(f: Callable[[Any, Any], Any]) -> Callable[..., Any]:
        return lambda attr, a, b: f(a, b)

    def unary(f: Callable[[Any], Any]) -> Callable[..., Any]:
        return lambda attr, a: f(a)

    def floor_div(a: Any, b: Any) -> Any:
        return torch.div(a, b, rounding_mode="floor")

    return {
        "Identity": unary(lambda a: a),
        "Cast": lambda attr, a: a.to(_torch_dtype(attr["DstT"])),
        "AddV2": binary(torch.add), "Add": binary(torch.add), "Sub": binary(torch.sub), "Mul": binary(torch.mul),
        "RealDiv": binary(torch.div), "FloorDiv": binary(floor_div), "Maximum": binary(torch.maximum),
        "Minimum": binary(torch.minimum), "SquaredDifference": binary(lambda a, b: (a - b) * (a - b)),
        "Less": binary(torch.lt), "Greater": binary(torch.gt), "GreaterEqual": binary(torch.ge),
        "Equal": binary(torch.eq), "LogicalAnd": binary(torch.logical_and),
        "Abs": unary(torch.abs), "Exp": unary(torch.exp), "Sigmoid": unary(torch.sigmoid),
        "Reciprocal": unary(torch.reciprocal), "Relu": unary(torch.relu), "Relu6": unary(lambda a: torch.clamp(a, 0, 6)),
        "AddN": lambda attr, *xs: sum(xs[1:], xs[0]),
        "Select": lambda attr, c, a, b: torch.where(c, a, b),
        "_FusedConv2D": _fused(False), "FusedDepthwiseConv2dNative": _fused(True),
        "Conv2D": lambda attr, x, w: _conv(x, w, attr, False),
        "DepthwiseConv2dNative": lambda attr, x, w: _conv(x, w, attr, True),
        "BiasAdd": binary(torch.add),
        "MaxPool": _max_pool, "ResizeBilinear": _resize,
        "Shape": unary(lambda a: torch.tensor(a.shape, dtype=torch.int32)),
        "Size": unary(lambda a: torch.tensor(a.numel(), dtype=torch.int32)),
        "Reshape": lambda attr, a, s: a.reshape([int(v) for v in s.reshape(-1).tolist()]),
        "Squeeze": lambda attr, a: a.squeeze(tuple(attr["squeeze_dims"])) if attr.get("squeeze_dims") else a.squeeze(),
        "ExpandDims": lambda attr, a, d: a.unsqueeze(int(d) if int(d) >= 0 else a.dim() + 1 + int(d)),
        "Pack": lambda attr, *xs: torch.stack(xs, attr.get("axis", 0)),
        "Unpack": lambda attr, a: tuple(torch.unbind(a, attr.get("axis", 0))),
        "ConcatV2": lambda attr, *xs: torch.cat(xs[:-1], int(xs[-1])),
        "Split": lambda attr, d, a: tuple(torch.chunk(a, attr["num_split"], int(d))),
        "Tile": lambda attr, a, m: a.repeat([int(v) for v in m.tolist()]),
        "Fill": lambda attr, dims, v: torch.full([int(d) for d in dims.tolist()], v.item(), dtype=v.dtype),
        "Range": lambda attr, a, b, d: torch.arange(a.item(), b.item(), d.item(), dtype=a.dtype),
        "TopKV2": _top_k,
        "ArgMax": lambda attr, a, d: torch.argmax(a, int(d)).to(_torch_dtype(attr.get("output_type", "DT_INT64"))),
        "Max": _reduce("max"), "Sum": _reduce("sum"),
        "StridedSlice": _strided_slice, "GatherNd": _gather_nd,
    }


def _top_k(attr: Mapping[str, Any], a: Any, k: Any) -> tuple[Any, Any]:
    import torch

    values, indices = torch.topk(a, int(k), dim=-1, sorted=True)
    return values, indices.to(torch.int32)


CONVOLUTIONS = {"Conv2D": False, "_FusedConv2D": False, "DepthwiseConv2dNative": True,
                "FusedDepthwiseConv2dNative": True}  # op -> depthwise


class GraphModel:
    """A parsed graph model: call it with its one input (an NHWC tensor) for its one output."""

    def __init__(self, model_json: bytes, weights: bytes):
        try:
            spec = json.loads(model_json)
            nodes = spec["modelTopology"]["node"]
            manifest = spec["weightsManifest"]
            signature = spec["signature"]
        except (ValueError, KeyError, TypeError) as exc:
            raise GraphError(f"not a TF.js graph model: {exc}") from None
        if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
            raise GraphError(f"the topology must list at most {MAX_NODES} nodes")
        ops = _ops()
        try:
            self._weights = parse_weights(manifest, weights)
        except (KeyError, TypeError, AttributeError) as exc:
            raise GraphError(f"the weights manifest is malformed ({exc!r})") from None
        self.nodes: dict[str, Node] = {}
        for n in nodes:
            try:
                node = Node(str(n["name"]), str(n["op"]),
                            tuple(_input(i) for i in n.get("input", []) if not i.startswith("^")),
                            {k: _attr(v) for k, v in (n.get("attr") or {}).items()})
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise GraphError(f"a node of the topology is malformed ({exc!r})") from None
            if node.op not in ("Const", "Placeholder") and node.op not in ops:
                raise GraphError(f"node {node.name!r}: operation {node.op!r} is not one this runner reads")
            if node.op == "Const" and node.name not in self._weights:
                raise GraphError(f"constant {node.name!r} has no weight")
            self.nodes[node.name] = node
        try:
            (self.input,) = [_input(v["name"])[0] for v in signature["inputs"].values()]
            (self.output,) = [_input(v["name"]) for v in signature["outputs"].values()]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise GraphError("the signature must name one input and one output") from None
        stray = [n.name for n in self.nodes.values() if n.op == "Placeholder" and n.name != self.input]
        if stray or self.input not in self.nodes:
            raise GraphError(f"the signature's input {self.input!r} must be the graph's one placeholder")
        self._ops = ops
        self._order = self._topological(self.output[0])
        self._constants: dict[str, Any] = {}
        self._filters: set[str] = set()

    def _topological(self, target: str) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}
        stack = [(target, False)]
        while stack:
            name, expanded = stack.pop()
            if name not in self.nodes:
                raise GraphError(f"node {name!r} is named as an input but not defined")
            if expanded:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise GraphError(f"the graph has a cycle through {name!r}")
            state[name] = 1
            stack.append((name, True))
            stack.extend((i, False) for i, _ in reversed(self.nodes[name].inputs) if state.get(i) != 2)
        return order

    def to(self, device: Any) -> GraphModel:
        import torch

        constants = {k: torch.from_numpy(v.copy()).to(device) for k, v in self._weights.items()}
        for node in self.nodes.values():  # each filter in torch's layout, once
            if node.op in CONVOLUTIONS:
                name = node.inputs[1][0]
                if name not in self._weights or name in self._filters:
                    raise GraphError(f"node {node.name!r}: its filter must be a constant of its own")
                self._filters.add(name)
                constants[name] = _conv_weight(constants[name], CONVOLUTIONS[node.op])
        self._constants = constants
        return self

    def __call__(self, x: Any) -> Any:
        if not self._constants:
            self.to("cpu")
        values: dict[str, Any] = {}
        for name in self._order:
            node = self.nodes[name]
            if node.op == "Const":
                out: Any = self._constants[name]
            elif node.op == "Placeholder":
                out = x
            else:
                args = [values[i][k] if isinstance(values[i], tuple) else values[i] for i, k in node.inputs]
                try:
                    out = self._ops[node.op](node.attr, *args)
                except (RuntimeError, IndexError, ValueError, TypeError) as exc:
                    shapes = [tuple(a.shape) for a in args]
                    raise GraphError(f"node {name!r} ({node.op}) on inputs of shape {shapes}: {exc}") from None
            values[name] = out
        result = values[self.output[0]]
        return result[self.output[1]] if isinstance(result, tuple) else result
