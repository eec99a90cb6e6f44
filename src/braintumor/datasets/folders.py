"""Class-per-folder image datasets, decoded once through the canonical preprocessing.

A dataset folder holds one sub-folder per class (``glioma/``, ``notumor/``, ...). Folder
names are matched to the configured class names ignoring case, spaces and punctuation, so
``notumor`` is "No Tumor". Decoded pixels are cached as a compressed ``.npz`` keyed by a
fingerprint of the file list, sizes and modification times, because decoding 5,700 JPEGs
is the slowest part of a short training run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintumor.decoding import ALLOWED_EXTENSIONS, decode_file
from braintumor.preprocessing import canonical_pixels

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """Decoded images: uint8 pixels (N, H, W), integer labels and relative paths."""

    pixels: np.ndarray
    labels: np.ndarray
    paths: list[str]
    fingerprint: str

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.pixels[index], self.labels[index],
                        [self.paths[i] for i in index], self.fingerprint)

    def __len__(self) -> int:
        return len(self.paths)


def class_key(name: str) -> str:
    """A folder or class name reduced to lower-case letters and digits.

    ``notumor``, ``No Tumor`` and ``no_tumor`` all become ``notumor``; the folder-per-class
    loaders (this module and the Spark jobs) match folders to classes by this key so that
    both label the same file the same way.
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


def class_id(folder_name: str, class_names: list[str]) -> int | None:
    """The id of the class a folder name stands for, or None when it names no class."""
    wanted = {class_key(name): label for label, name in enumerate(class_names)}
    return wanted.get(class_key(folder_name))


def list_images(root: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    """(path, label) for every image below ``root``, sorted by path for reproducibility."""
    items: list[tuple[Path, int]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = class_id(folder.name, class_names)
        if label is None:
            if not folder.name.startswith("."):
                log.warning("skipping folder %s: not one of the classes %s", folder, class_names)
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower().lstrip(".") in ALLOWED_EXTENSIONS and not any(
                part.startswith(".") for part in path.relative_to(root).parts
            ):
                items.append((path, label))
    if not items:
        raise FileNotFoundError(f"no images of the classes {class_names} below {root}")
    return items


def fingerprint(items: list[tuple[Path, int]], root: Path, size: tuple[int, int],
                framing: str = "stretch") -> str:
    digest = hashlib.sha256(repr(size).encode())
    if framing != "stretch":  # the stretched caches keep the names they always had
        digest.update(framing.encode())
    for path, label in items:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_folder(root: Path, class_names: list[str], size: tuple[int, int],
                cache_dir: Path | None = None, workers: int = 4,
                framing: str = "stretch") -> ImageSet:
    """Decode every image below ``root`` to canonical uint8 pixels of ``size``."""
    root = Path(root)
    return _decode_items(root, list_images(root, class_names), size, cache_dir, workers,
                         framing)


def load_tumour_slices(root: Path, label: int, size: tuple[int, int],
                       cache_dir: Path | None = None, workers: int = 4,
                       framing: str = "stretch") -> tuple[ImageSet, np.ndarray]:
    """Slices known only to hold a tumour (``br35h-tumour/``: ``groups.tsv`` lists each
    file's near-duplicate group), all labelled ``label``; returns (images, group ids).

    Paths are given as ``<folder name>/<file>`` so that they never collide with the
    class folders' paths in a run's ``split.json``.
    """
    root = Path(root)
    group_of = read_groups(root)
    names = sorted(group_of)
    images = _decode_items(root, [(root / name, label) for name in names], size, cache_dir,
                           workers, framing, prefix=root.name)
    return images, np.array([group_of[name] for name in names])


def read_groups(root: Path) -> dict[str, str]:
    """{file relative to ``root``: near-duplicate group} from ``root/groups.tsv``."""
    table = Path(root) / "groups.tsv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: the folder must list file -> group")
    rows = (line.split("\t") for line in table.read_text().splitlines()[1:] if line.strip())
    return {name: group.strip() for name, group in rows}


def _decode_items(root: Path, items: list[tuple[Path, int]], size: tuple[int, int],
                  cache_dir: Path | None, workers: int, framing: str,
                  prefix: str = "") -> ImageSet:
    fp = fingerprint(items, root, size, framing)
    paths = [str(Path(prefix) / p.relative_to(root)) if prefix else str(p.relative_to(root))
             for p, _ in items]
    labels = np.array([label for _, label in items], dtype=np.int64)
    cache = Path(cache_dir) / f"{root.name}-{size[0]}x{size[1]}-{fp}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        pixels = np.load(cache)["pixels"]
        log.info("loaded %d cached images from %s", len(pixels), cache)
        return ImageSet(pixels, labels, paths, fp)

    def decode(item: tuple[Path, int]) -> np.ndarray:
        return canonical_pixels(decode_file(str(item[0])), size, framing)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pixels = np.stack(list(pool.map(decode, items)))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, pixels=pixels)
    log.info("decoded %d images from %s", len(pixels), root)
    return ImageSet(pixels, labels, paths, fp)
