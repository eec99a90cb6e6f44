"""Rewiring a classifier so one forward pass yields the Grad-CAM feature map and logits.

A saved classifier only exposes its probabilities. Grad-CAM needs the last convolutional
feature map and the *logits* of the predicted class (gradients through a saturated softmax
vanish, which gives empty maps), and calibration needs logits too. This module builds a
functional model ``input -> [feature_map, head_input]`` with the classifier's own weights,
plus a function ``head_input -> logits``. A model whose metadata names a segmentation
layer (``ModelMetadata.segmentation_layer``) also returns that layer's output, the
tumour outline, from the same pass; a model without one gets the two outputs only.

Two shapes of model are handled:

* flat: the feature layer is one of the model's own layers (a functional ResNet50, our
  own architectures); its ``.output`` tensor is taken directly.
* nested: the backbone is a sub-model, e.g. ``Sequential([ResNet50(...), GAP, Dense])``,
  the structure most users' saved models have. Keras 3 cannot reach the inner layer from
  the outer graph ("Graph disconnected", "never called"), so a new functional model is
  built from a fresh input: the layers before the backbone, the backbone re-exposed to
  return its feature map as well, then the outer layers re-applied to its output (same
  weights). This needs the outer model to be a simple chain, which these models are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from braintumor.errors import ModelLoadError


@dataclass
class ExplainGraph:
    """``model(x) -> [feature_map, head_input]`` and ``logits = head(head_input)``.

    With a segmentation layer the model returns ``[feature_map, head_input, outline]``,
    the outline being that layer's output (N, H, W, 1) in the same pass.
    """

    model: keras.Model
    head: Callable
    layer_name: str
    #: The layer whose output is the tumour outline; "" when the model has none.
    segmentation_name: str = ""


def _output_rank(layer: keras.layers.Layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None


def _is_container(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model)


def _own_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def find_feature_layer(model: keras.Model, name: str = ""
                       ) -> tuple[keras.Model | None, Any]:
    """(nested container or None, layer) of the Grad-CAM feature layer.

    With ``name`` the layer of that name is taken, looked for in the model and then in its
    sub-models. Without it, the last layer with a 4-D output (batch, height, width,
    channels) is taken, looking inside a sub-model when the last such layer is one.
    """
    layers = _own_layers(model)
    if name:
        for layer in layers:
            if layer.name == name:
                return None, layer
        for layer in layers:
            if _is_container(layer):
                for inner in _own_layers(layer):
                    if inner.name == name:
                        return layer, inner
        raise ModelLoadError("GRADCAM_LAYER", f"the model has no layer named {name!r}")
    for layer in reversed(layers):
        if _is_container(layer):
            for inner in reversed(_own_layers(layer)):
                if _output_rank(inner) == 4:
                    return layer, inner
        elif _output_rank(layer) == 4:
            return None, layer
    raise ModelLoadError(
        "GRADCAM_LAYER", "the model has no layer with a 4-D (image-like) output to explain"
    )


def _head_for(final: keras.layers.Layer) -> tuple[Callable, bool]:
    """(head_input -> logits, whether the final layer's input is the head input)."""
    activation = getattr(final, "activation", None)
    act_name = getattr(activation, "__name__", "")
    if isinstance(final, keras.layers.Dense) and act_name == "softmax":
        return (lambda h: keras.ops.matmul(h, final.kernel) + final.bias), True
    if isinstance(final, keras.layers.Softmax) or (
        isinstance(final, keras.layers.Activation) and act_name == "softmax"
    ):
        return (lambda h: h), True
    # A model whose output is already a probability vector of another making: log-probs
    # differ from logits by a per-image constant, which neither argmax nor Grad-CAM's
    # per-image normalisation can see.
    return (lambda p: keras.ops.log(keras.ops.maximum(p, 1e-12))), False


def _outline_output(model: keras.Model, name: str) -> Any:
    """The output tensor of the segmentation layer ``name``: one channel, image-shaped."""
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ModelLoadError("MODEL_PATH", f"the model's metadata names the segmentation "
                                           f"layer {name!r}, which the model does not have"
                             ) from None
    shape = tuple(layer.output.shape)
    if len(shape) != 4 or shape[-1] != 1:
        raise ModelLoadError("MODEL_PATH", f"the segmentation layer {name!r} has output "
                                           f"shape {shape}; expected (None, H, W, 1)")
    return layer.output


def build_explain_graph(model: keras.Model, layer_name: str = "",
                        segmentation_layer: str = "") -> ExplainGraph:
    """Build the feature-map + logits view of ``model`` (see the module docstring);
    with ``segmentation_layer``, the outline that layer outputs as a third output."""
    container, target = find_feature_layer(model, layer_name)
    final = _own_layers(model)[-1]
    head, takes_final_input = _head_for(final)

    if container is None and not isinstance(model, keras.Sequential):
        head_input = final.input if takes_final_input else model.outputs[0]
        outputs = [target.output, head_input]
        if segmentation_layer:
            outputs.append(_outline_output(model, segmentation_layer))
        explain = keras.Model(model.inputs, outputs, name="explain")
        return ExplainGraph(explain, head, target.name, segmentation_layer)
    if segmentation_layer:  # our segmenting architectures are flat functional models
        raise ModelLoadError("MODEL_PATH", "a segmentation layer is only read from a flat "
                                           "functional model's own layers")

    # A Sequential (whose layers may carry several build-time call nodes) or a nested
    # backbone: re-apply the chain of layers to a fresh input.
    inner: keras.Model | None = None
    if container is not None:
        inner = keras.Model(container.inputs, [target.output, container.outputs[0]],
                            name=f"{container.name}_explained")
    inputs = keras.Input(shape=_input_shape(model), name="image")
    x = inputs
    feature_map = head_input = None
    for layer in _own_layers(model):
        if layer is container and inner is not None:
            feature_map, x = inner(x)
        elif layer is final:
            head_input = x if takes_final_input else layer(x)
            x = layer(x)
        else:
            x = layer(x)
            if layer is target:
                feature_map = x
    explain = keras.Model(inputs, [feature_map, head_input], name="explain")
    return ExplainGraph(explain, head, target.name)


def _input_shape(model: keras.Model) -> tuple:
    try:
        return tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, ValueError, TypeError):
        return tuple(model.input_shape[1:])
