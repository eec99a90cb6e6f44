"""The four classes of the shipped model and the dataset: the one default list.

Settings (``CLASS_NAMES``), training and the API's descriptions all start from this
order; a model's own metadata may name others.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Class names by id, in the dataset's and the shipped model's order.
DEFAULT_CLASS_NAMES: tuple[str, ...] = ("Glioma", "Meningioma", "No Tumor", "Pituitary")


def is_no_tumour(name: str) -> bool:
    """Whether a class name means "no tumour" (``No Tumor``, ``notumor``, ``no_tumour``...).

    The one rule by which every layer tells the healthy class from the tumour classes.
    """
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return key in ("notumor", "notumour", "healthy", "normal")


def no_tumour_index(class_names: Sequence[str]) -> int | None:
    """The index of the class :func:`is_no_tumour` names, or None when there is none."""
    return next((i for i, name in enumerate(class_names) if is_no_tumour(name)), None)
