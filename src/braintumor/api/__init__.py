"""The Flask application: an app factory, one blueprint, and the error handlers.

``create_app`` loads the model once per process. Under gunicorn it runs in each worker
after the fork (never with ``--preload``: TensorFlow's thread pools do not survive a
fork), so every worker owns its model and compiled functions.
"""

from braintumor.api.app import create_app

__all__ = ["create_app"]
