"""The TF.js graph runner (transforms/models/tfjs_graph.py): TensorFlow's semantics on small
graphs checked against numpy, and a model.json that is not data it reads refused at load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transforms.models.tfjs_graph import GraphError, GraphModel, parse_weights


def _model(nodes: list[dict], weights: dict[str, np.ndarray], output: str = "out",
           quantise: dict[str, dict] | None = None) -> GraphModel:
    """A graph model: an int/float Placeholder "x", the given nodes, their constants as weights."""
    entries, data = [], b""
    for name, value in weights.items():
        entry = {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
        q = (quantise or {}).get(name)
        if q:
            entry["quantization"] = q
            data += q.pop("_bytes")
        else:
            data += value.tobytes()
        entries.append(entry)
    consts = [{"name": n, "op": "Const", "attr": {}} for n in weights]
    spec = {"format": "graph-model",
            "modelTopology": {"node": [{"name": "x", "op": "Placeholder", "attr": {}}, *consts, *nodes]},
            "weightsManifest": [{"paths": ["w.bin"], "weights": entries}],
            "signature": {"inputs": {"x": {"name": "x:0"}}, "outputs": {"y": {"name": f"{output}:0"}}}}
    return GraphModel(json.dumps(spec).encode(), data)


def _ints(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _s(text: str) -> dict:
    import base64

    return {"s": base64.b64encode(text.encode()).decode()}


def _tf_same_conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """TensorFlow's SAME convolution written out: NHWC input, HWIO filter, extra padding after."""
    n, h, wd, _ = x.shape
    kh, kw, _, out = w.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
    padded = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    y = np.zeros((n, oh, ow, out), np.float32)
    for i in range(oh):
        for j in range(ow):
            patch = padded[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def test_a_same_convolution_pads_as_tensorflow_does_with_the_extra_pixel_after():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 6, 6, 2)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)
    fused = {"name": "out", "op": "_FusedConv2D", "input": ["x", "w", "b"],
             "attr": {"strides": _ints(1, 2, 2, 1), "padding": _s("SAME"), "data_format": _s("NHWC"),
                      "fused_ops": {"list": {"s": [_s("BiasAdd")["s"], _s("Relu6")["s"]]}}}}
    got = _model([fused], {"w": w, "b": bias})(torch.from_numpy(x)).numpy()
    want = np.clip(_tf_same_conv(x, w, 2) + bias, 0, 6)
    assert got.shape == (1, 3, 3, 4)
    np.testing.assert_allclose(got, want, atol=1e-5)
    symmetric = np.clip(_tf_same_conv(np.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0)))[:, :6, :6], w, 2) + bias, 0, 6)
    assert not np.allclose(got, symmetric, atol=1e-3), "padding before as well as after would differ"


def test_a_depthwise_convolution_orders_output_channels_as_input_times_multiplier():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)  # [h, w, in, multiplier]
    node = {"name": "out", "op": "DepthwiseConv2dNative", "input": ["x", "w"],
            "attr": {"strides": _ints(1, 1, 1, 1), "padding": _s("SAME")}}
    got = _model([node], {"w": w})(torch.from_numpy(x)).numpy()
    for c in range(2):
        for m in range(2):
            want = _tf_same_conv(x[..., c:c + 1], w[:, :, c:c + 1, m:m + 1], 1)[..., 0]
            np.testing.assert_allclose(got[..., c * 2 + m], want, atol=1e-5)


def test_a_same_max_pool_never_takes_the_padding():
    x = -np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    node = {"name": "out", "op": "MaxPool", "input": ["x"],
            "attr": {"ksize": _ints(1, 5, 5, 1), "strides": _ints(1, 1, 1, 1), "padding": _s("SAME")}}
    got = _model([node], {})(torch.from_numpy(x)).numpy()
    assert got.max() < 0 and got[0, 3, 3, 0] == -6  # the corner sees rows and columns 1-3 only


def test_half_pixel_bilinear_resizing():
    x = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    node = {"name": "out", "op": "ResizeBilinear", "input": ["x", "size"],
            "attr": {"align_corners": {"b": False}, "half_pixel_centers": {"b": True}}}
    got = _model([node], {"size": np.array([1, 4], np.int32)})(torch.from_numpy(x)).numpy().ravel()
    np.testing.assert_allclose(got, [0.0, 0.25, 0.75, 1.0])


@pytest.mark.parametrize(("masks", "index"), [
    ({}, np.s_[1:3, 0:2]),
    ({"begin_mask": 1, "end_mask": 2}, np.s_[:3, 0:]),
    ({"shrink_axis_mask": 1}, np.s_[1, 0:2]),
    ({"new_axis_mask": 1}, np.s_[None, 0:2]),
    ({"ellipsis_mask": 1}, np.s_[..., 0:2]),
])
def test_strided_slice_masks_index_as_numpy_does(masks, index):
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    node = {"name": "out", "op": "StridedSlice", "input": ["x", "begin", "end", "strides"],
            "attr": {k: {"i": str(v)} for k, v in masks.items()}}
    consts = {"begin": np.array([1, 0], np.int32), "end": np.array([3, 2], np.int32), "strides": np.array([1, 1], np.int32)}
    got = _model([node], consts)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, x[index])


def test_second_outputs_top_k_and_gather_nd():
    x = np.array([[0.1, 0.9, 0.5, 0.7]], np.float32)
    nodes = [
        {"name": "top", "op": "TopKV2", "input": ["x", "k"], "attr": {"sorted": {"b": True}}},
        {"name": "idx", "op": "Reshape", "input": ["top:1", "shape"], "attr": {}},
        {"name": "out", "op": "GatherNd", "input": ["x", "pairs"], "attr": {}},
        {"name": "pairs", "op": "Pack", "input": ["zeros", "idx"], "attr": {"axis": {"i": "1"}}},
    ]
    consts = {"k": np.array(2, np.int32), "shape": np.array([2], np.int32), "zeros": np.zeros(2, np.int32)}
    np.testing.assert_allclose(_model(nodes, consts)(torch.from_numpy(x)).numpy(), [0.9, 0.7])


def test_quantised_weights_are_dequantised():
    half = np.array([0.5, -1.25, 3.0], np.float32)
    as_half = {"dtype": "float16", "_bytes": half.astype(np.float16).tobytes()}
    byte = {"dtype": "uint8", "scale": 0.5, "min": -1.0, "_bytes": np.array([0, 2, 10], np.uint8).tobytes()}
    model = _model([{"name": "out", "op": "AddV2", "input": ["h", "q"], "attr": {}}],
                   {"h": half, "q": np.zeros(3, np.float32)}, quantise={"h": as_half, "q": byte})
    np.testing.assert_allclose(model(torch.zeros(1)).numpy(), half + np.array([-1.0, 0.0, 4.0]))


def test_a_graph_naming_an_operation_it_does_not_read_is_refused_at_load():
    with pytest.raises(GraphError, match="'PyFunc' is not one this runner reads"):
        _model([{"name": "out", "op": "PyFunc", "input": ["x"], "attr": {}}], {})


@pytest.mark.parametrize(("nodes", "message"), [
    ([{"name": "out", "op": "Identity", "input": ["nowhere"], "attr": {}}], "'nowhere' is named as an input but not defined"),
    ([{"name": "y", "op": "Placeholder", "attr": {}}, {"name": "out", "op": "AddV2", "input": ["x", "y"], "attr": {}}],
     "must be the graph's one placeholder"),
    ([{"name": "a", "op": "Identity", "input": ["out"], "attr": {}},
      {"name": "out", "op": "Identity", "input": ["a"], "attr": {}}], "cycle"),
])
def test_a_broken_topology_is_refused_at_load(nodes, message):
    with pytest.raises(GraphError, match=message):
        _model(nodes, {})


def test_weights_that_do_not_fill_the_manifest_exactly_are_refused():
    manifest = [{"paths": ["w.bin"], "weights": [{"name": "w", "shape": [2, 2], "dtype": "float32"}]}]
    assert parse_weights(manifest, np.ones(4, np.float32).tobytes())["w"].shape == (2, 2)
    with pytest.raises(GraphError, match="runs past the end"):
        parse_weights(manifest, np.ones(3, np.float32).tobytes())
    with pytest.raises(GraphError, match="the manifest names 16"):
        parse_weights(manifest, np.ones(5, np.float32).tobytes())
    with pytest.raises(GraphError, match="not read"):
        parse_weights([{"paths": [], "weights": [{"name": "s", "shape": [1], "dtype": "string"}]}], b"x")
    with pytest.raises(GraphError, match="negative dimension"):
        parse_weights([{"paths": [], "weights": [{"name": "n", "shape": [-1], "dtype": "float32"}]}], b"")


def test_a_file_that_is_not_a_graph_model_is_refused():
    with pytest.raises(GraphError, match="not a TF.js graph model"):
        GraphModel(b'{"modelTopology": {}}', b"")
    spec = {"modelTopology": {"node": [{"op": "Identity"}]}, "weightsManifest": [], "signature": {}}
    with pytest.raises(GraphError, match="a node of the topology is malformed"):
        GraphModel(json.dumps(spec).encode(), b"")
    spec = {"modelTopology": {"node": []}, "weightsManifest": [{"weights": [{"shape": [1]}]}], "signature": {}}
    with pytest.raises(GraphError, match="the weights manifest is malformed"):
        GraphModel(json.dumps(spec).encode(), b"")
