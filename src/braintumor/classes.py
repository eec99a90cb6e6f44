"""The four classes of the shipped model and the dataset: the one default list.

Settings (``CLASS_NAMES``), training and the API's descriptions all start from this
order; a model's own metadata may name others.
"""

from __future__ import annotations

#: Class names by id, in the dataset's and the shipped model's order.
DEFAULT_CLASS_NAMES: tuple[str, ...] = ("Glioma", "Meningioma", "No Tumor", "Pituitary")
