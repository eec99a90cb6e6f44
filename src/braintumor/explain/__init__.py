"""Turning a Grad-CAM map into the pictures a person looks at.

The Grad-CAM maths itself (one forward pass, gradient of the predicted logit, weighted
feature maps) lives with the compiled inference function in
:mod:`braintumor.model.loaded`; this package renders its result."""
