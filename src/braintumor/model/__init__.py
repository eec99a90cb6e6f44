"""Loading a classifier with its metadata: on TensorFlow (:func:`load_model`, the one
compiled function that returns calibrated probabilities and the Grad-CAM map from a
single forward pass) or, for serving, on the runtime MODEL_RUNTIME picks
(:func:`load_serving_model`: ONNX Runtime where the model file allows)."""

from braintumor.model.loaded import LoadedModel, load_model
from braintumor.model.metadata import ModelMetadata
from braintumor.model.outputs import ModelOutputs
from braintumor.model.runtime import ServingModel, load_serving_model, onnx_threads

__all__ = ["LoadedModel", "ModelMetadata", "ModelOutputs", "ServingModel", "load_model",
           "load_serving_model", "onnx_threads"]
