"""Whether Grad-CAM of a Keras classifier's head is exactly CAM, read from the model's
structure, and with which kernel rows (:mod:`braintumor.model.onnx_export` exports those
beside the graph; its docstring says why the weights are then constants)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from braintumor.model.graph import find_feature_layer


@dataclass(frozen=True)
class CamHead:
    """Whether Grad-CAM of the head is exactly CAM, and with which weights."""

    #: (channels, classes): the dense layer's kernel rows that multiply the pooled
    #: feature map; None when the head is not of that form.
    kernel: np.ndarray | None
    #: Where those rows start in the dense layer's input (after other pooled vectors).
    offset: int = 0
    #: Why the head is not CAM; "" when it is.
    reason: str = ""

    @property
    def exact(self) -> bool:
        return self.kernel is not None



def _passes_through(layer: Any, rank: int) -> bool:
    """Whether ``layer`` is the identity at inference on a tensor of ``rank`` (N, D: 2)."""
    import keras

    if isinstance(layer, keras.layers.Dropout | keras.layers.Identity):
        return True
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", "") == "linear"
    return isinstance(layer, keras.layers.Flatten) and rank == 2


def _global_average(layer: Any) -> bool:
    import keras

    return (isinstance(layer, keras.layers.GlobalAveragePooling2D)
            and getattr(layer, "data_format", "channels_last") == "channels_last"
            and not getattr(layer, "keepdims", False))


def _softmax_dense(layer: Any) -> bool:
    import keras

    return (isinstance(layer, keras.layers.Dense)
            and getattr(layer.activation, "__name__", "") == "softmax"
            and layer.bias is not None)


def _kernel_rows(final: Any, offset: int, channels: int) -> np.ndarray:
    kernel = np.asarray(final.kernel, np.float32)
    return np.ascontiguousarray(kernel[offset:offset + channels])


def _consumers(model: Any) -> dict[int, list[tuple[Any, Any]]]:
    """id(tensor) -> [(operation, node)] of the nodes of ``model`` that read it."""
    readers: dict[int, list[tuple[Any, Any]]] = {}
    for operation in model.operations:
        for node in getattr(operation, "_inbound_nodes", []):
            for tensor in node.input_tensors:
                readers.setdefault(id(tensor), []).append((operation, node))
    return readers


def _ancestors(tensor: Any) -> set[int]:
    """ids of ``tensor`` and of every tensor it is computed from (iteratively: deep
    models), through the nodes that produced them."""
    found: set[int] = set()
    stack = [tensor]
    while stack:
        current = stack.pop()
        if id(current) in found:
            continue
        found.add(id(current))
        history = getattr(current, "_keras_history", None)
        if history is None:
            continue
        nodes = getattr(history.operation, "_inbound_nodes", [])
        if history.node_index < len(nodes):
            stack.extend(nodes[history.node_index].input_tensors)
    return found


def _flat_cam_head(model: Any, target: Any, final: Any) -> CamHead:
    """:func:`cam_head` of a functional model whose Grad-CAM layer is one of its own."""
    import keras

    readers = _consumers(model)
    goal = final.input
    upstream = _ancestors(goal)

    def leads_to_goal(tensor: Any) -> bool:
        """Whether the logits depend on ``tensor``."""
        return id(tensor) in upstream

    def live(tensor: Any) -> list[tuple[Any, Any]]:
        return [(op, node) for op, node in readers.get(id(tensor), [])
                if any(leads_to_goal(out) for out in node.outputs)]

    feature_map = target.output
    paths = live(feature_map)
    if len(paths) != 1 or not _global_average(paths[0][0]):
        return CamHead(None, reason=f"the Grad-CAM layer {target.name!r} reaches the logits "
                                    "other than through one global average pooling")
    channels = int(feature_map.shape[-1])
    tensor, offset = paths[0][1].outputs[0], 0
    while tensor is not goal:
        paths = live(tensor)
        if len(paths) != 1:
            return CamHead(None, reason="the pooled Grad-CAM features reach the logits "
                                        "along several paths")
        operation, node = paths[0]
        inputs = list(node.input_tensors)
        if isinstance(operation, keras.layers.Concatenate) and (
                operation.axis in (-1, len(tensor.shape) - 1)):
            where = [i for i, t in enumerate(inputs) if t is tensor]
            if len(where) != 1:
                return CamHead(None, reason="the pooled Grad-CAM features are concatenated "
                                            "more than once")
            offset += sum(int(t.shape[-1]) for t in inputs[:where[0]])
        elif not (_passes_through(operation, len(tensor.shape)) and len(inputs) == 1):
            return CamHead(None, reason=f"the pooled Grad-CAM features pass through "
                                        f"{operation.name!r} ({type(operation).__name__}) "
                                        "before the dense layer")
        tensor = node.outputs[0]
    return CamHead(_kernel_rows(final, offset, channels), offset)


def _chain_cam_head(layers: list[Any], after: int, channels: int, final: Any) -> CamHead:
    """:func:`cam_head` of a chain of layers (a Sequential, or the outer layers of a
    model with a nested backbone) whose Grad-CAM map is the output of ``layers[after]``."""
    rest = layers[after + 1:]
    if not rest or not _global_average(rest[0]) or rest[-1] is not final:
        return CamHead(None, reason="the Grad-CAM map is not followed by a global average "
                                    "pooling and, last, the dense layer")
    for layer in rest[1:-1]:
        if not _passes_through(layer, 2):
            return CamHead(None, reason=f"the pooled Grad-CAM features pass through "
                                        f"{layer.name!r} ({type(layer).__name__}) before "
                                        "the dense layer")
    return CamHead(_kernel_rows(final, 0, channels))


def cam_head(keras_model: Any, gradcam_layer: str = "") -> CamHead:
    """Whether Grad-CAM of ``keras_model`` at ``gradcam_layer`` is exactly CAM: the layer's
    map reaches the logits only through a global average pooling, concatenated or not
    with other pooled vectors, then the final softmax dense layer; and with which kernel
    rows. Read from the model's structure (:func:`braintumor.model.graph.find_feature_layer`
    finds the layer as the service does); anything not recognised is not CAM.
    """
    import keras

    container, target = find_feature_layer(keras_model, gradcam_layer)
    layers = [layer for layer in keras_model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    final = layers[-1]
    if not _softmax_dense(final):
        return CamHead(None, reason=f"the final layer {final.name!r} is not a dense layer "
                                    "with a softmax and a bias")
    channels = int(target.output.shape[-1])
    if container is not None:
        outputs = getattr(container, "outputs", None) or []
        if len(outputs) != 1 or outputs[0] is not target.output:
            return CamHead(None, reason=f"the Grad-CAM layer {target.name!r} is not the "
                                        f"output of the nested model {container.name!r}")
        return _chain_cam_head(layers, layers.index(container), channels, final)
    if isinstance(keras_model, keras.Sequential):
        return _chain_cam_head(layers, layers.index(target), channels, final)
    return _flat_cam_head(keras_model, target, final)

