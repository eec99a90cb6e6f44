"""What the request handlers share: settings, the classifier, and service status."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from braintumor.classify import Classifier
from braintumor.config import Settings


@dataclass
class Service:
    settings: Settings
    classifier: Classifier
    started_at: float


def service() -> Service:
    return current_app.extensions["braintumor"]
