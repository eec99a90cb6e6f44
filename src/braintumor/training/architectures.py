"""Model architectures the pipeline can train.

``compact`` is the shipped default: a small residual CNN on one grey channel, sized so
that it trains from scratch on two CPU cores in well under an hour and answers in a few
milliseconds. ``resnet50`` is Keras' ResNet50 built flat (its layers are the model's own
layers, not a nested sub-model), so Grad-CAM finds its last convolution without tricks.
Every architecture ends in a Dense softmax whose input is the pooled feature vector; the
service takes logits from that layer for calibration and Grad-CAM.
"""

from __future__ import annotations

import keras
from keras import layers

from braintumor.preprocessing import InputSpec

#: The Grad-CAM layer each architecture names in its metadata.
GRADCAM_LAYERS = {"compact": "features", "resnet50": "conv5_block3_out"}


def _conv_bn_relu(x, filters: int, stride: int = 1, name: str = ""):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters: int, stride: int, name: str):
    """Two 3x3 convolutions with a shortcut (projected when the shape changes)."""
    shortcut = x
    y = _conv_bn_relu(x, filters, stride, name=f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_b_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_b_bn")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj_conv")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def compact_cnn(spec: InputSpec, num_classes: int = 4, width: int = 32,
                dropout: float = 0.3) -> keras.Model:
    """A ResNet-style CNN of about 1.2M parameters.

    Stem at stride 2, then four stages (width x1, x2, x4, x8) of one residual block each,
    each later stage halving the resolution. The last stage's output is named
    ``features`` and is what Grad-CAM explains (1/16 of the input size).
    """
    inputs = keras.Input(shape=(*spec.size, spec.channels), name="image")
    x = _conv_bn_relu(inputs, width, stride=2, name="stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    x = _residual_block(x, width, 1, "stage1")
    x = _residual_block(x, width * 2, 2, "stage2")
    x = _residual_block(x, width * 4, 2, "stage3")
    x = _residual_block(x, width * 8, 1, "stage4")
    x = layers.Activation("linear", name="features")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="braintumor_compact")


def resnet50(spec: InputSpec, num_classes: int = 4, weights: str | None = None,
             dropout: float = 0.3) -> tuple[keras.Model, keras.Model]:
    """Flat ResNet50 with a new 4-way head; returns (model, backbone).

    The backbone is built on the model's own input tensor, so its layers become the
    model's layers (no nested sub-model). ImageNet weights need three channels.
    """
    inputs = keras.Input(shape=(*spec.size, spec.channels), name="image")
    backbone = keras.applications.ResNet50(
        include_top=False, weights=weights, input_tensor=inputs,
    )
    x = layers.GlobalAveragePooling2D(name="pool")(backbone.output)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="braintumor_resnet50"), backbone


#: Architecture name -> builder(spec, classes, width, weights) -> (model, backbone or None).
#: The backbone is what the two-stage recipe freezes when starting from pretrained weights.
ARCHITECTURES = {
    "compact": lambda spec, classes, width, weights: (compact_cnn(spec, classes, width), None),
    "resnet50": lambda spec, classes, width, weights: resnet50(spec, classes, weights=weights),
}


def build_with_backbone(architecture: str, spec: InputSpec, num_classes: int = 4,
                        width: int = 32, weights: str | None = None
                        ) -> tuple[keras.Model, keras.Model | None]:
    """(model, backbone or None) of a registered architecture."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r} ({', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[architecture](spec, num_classes, width, weights)


def build(architecture: str, spec: InputSpec, num_classes: int = 4,
          width: int = 32) -> keras.Model:
    return build_with_backbone(architecture, spec, num_classes, width)[0]
