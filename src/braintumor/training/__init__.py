"""Training pipeline: dataset and split, architectures, the train loop, calibration and
evaluation. Everything reads images through :mod:`braintumor.preprocessing`, the same
function the service uses."""
