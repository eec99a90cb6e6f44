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
GRADCAM_LAYERS = {"compact": "features", "compact-seg": "gated", "resnet50": "conv5_block3_out"}
#: The tumour-outline layer of the architectures that have one (ModelMetadata).
SEGMENTATION_LAYERS = {"compact-seg": "segmentation"}
#: The compact networks' layers by role: the backbone's layers (by name prefix), its last
#: stage's output (pooled into the head), and the head.
BACKBONE_PREFIXES = ("stem_", "stage1_", "stage2_", "stage3_", "stage4_")
FEATURES_LAYER = "features"
HEAD_LAYER = "predictions"


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
    x = layers.Activation("linear", name=FEATURES_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name="braintumor_compact")


def _upsample_merge(x, skip, filters: int, name: str):
    """Double ``x``'s resolution, join the encoder's ``skip`` and mix them (3x3 conv)."""
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(x)
    x = layers.Concatenate(name=f"{name}_cat")([x, skip])
    return _conv_bn_relu(x, filters, name=name)


def compact_seg_cnn(spec: InputSpec, num_classes: int = 4, width: int = 32,
                    dropout: float = 0.3) -> keras.Model:
    """:func:`compact_cnn` with a light U-Net decoder whose outline gates the Grad-CAM layer.

    Why: a classifier trained on labels alone looks wherever the labels correlate (the
    old default's Grad-CAM peak fell on the tumour 30% of the time), and its 1/16 map is
    too coarse for a lesion of a few millimetres. Here a decoder reads the backbone at
    1/16, 1/8, 1/4 and 1/2 and outputs ``segmentation``, the tumour outline at the input
    size (sigmoid), trained on expert outlines (and on healthy slices' empty masks). The
    decoder's 1/8 map, multiplied by the outline pooled to 1/8, is ``gated``: the
    Grad-CAM layer. The head reads ``gated`` (global average) beside the last stage's
    pooled ``features``, so the score Grad-CAM explains has a part that can only come
    from where the model sees a tumour, and the not-a-brain-MRI statistics and the
    memory still read the whole picture's features. The model has one output (the
    probabilities), like every classifier the service loads; the outline is read from
    its layer (``ModelMetadata.segmentation_layer``).
    """
    inputs = keras.Input(shape=(*spec.size, spec.channels), name="image")
    stem = _conv_bn_relu(inputs, width, stride=2, name="stem")  # 1/2
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(stem)
    s4 = _residual_block(x, width, 1, "stage1")  # 1/4
    s8 = _residual_block(s4, width * 2, 2, "stage2")  # 1/8
    x = _residual_block(s8, width * 4, 2, "stage3")  # 1/16
    x = _residual_block(x, width * 8, 1, "stage4")
    features = layers.Activation("linear", name=FEATURES_LAYER)(x)
    reduced = _conv_bn_relu_1x1(features, width * 2, name="dec16")
    d8 = _upsample_merge(reduced, s8, width * 2, "dec8")
    d4 = _upsample_merge(d8, s4, width, "dec4")
    d2 = _upsample_merge(d4, stem, width // 2, "dec2")
    logits = layers.Conv2D(1, 1, name="seg_logits")(d2)
    logits = layers.UpSampling2D(2, interpolation="bilinear", name="seg_up")(logits)
    outline = layers.Activation("sigmoid", name="segmentation")(logits)
    gate = layers.AveragePooling2D(8, name="seg_pool")(outline)
    gated = layers.Multiply(name="gated")([d8, gate])
    pooled = layers.Concatenate(name="pool")([
        layers.GlobalAveragePooling2D(name="features_pool")(features),
        layers.GlobalAveragePooling2D(name="gated_pool")(gated),
    ])
    x = layers.Dropout(dropout, name="dropout")(pooled)
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name="braintumor_compact_seg")


def _conv_bn_relu_1x1(x, filters: int, name: str):
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def with_outline(model: keras.Model) -> keras.Model:
    """The training view of a ``compact-seg`` model: (probabilities, outline), same layers."""
    return keras.Model(model.inputs, [model.output, model.get_layer("segmentation").output],
                       name=f"{model.name}_train")


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
    outputs = layers.Dense(num_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inputs, outputs, name="braintumor_resnet50"), backbone


#: Architecture name -> builder(spec, classes, width, weights) -> (model, backbone or None).
#: The backbone is what the two-stage recipe freezes when starting from pretrained weights.
ARCHITECTURES = {
    "compact": lambda spec, classes, width, weights: (compact_cnn(spec, classes, width), None),
    "compact-seg": lambda spec, classes, width, weights: (
        compact_seg_cnn(spec, classes, width), None),
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
