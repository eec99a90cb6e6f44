"""Loading a Keras classifier with its metadata, and the one compiled function that
returns calibrated probabilities and the Grad-CAM map from a single forward pass."""

from braintumor.model.loaded import LoadedModel, load_model
from braintumor.model.metadata import ModelMetadata

__all__ = ["LoadedModel", "ModelMetadata", "load_model"]
