"""Expert tumour outlines, framed exactly as their images are.

``figshare-masks/`` holds one binary PNG per figshare tumour slice of Training, of the
same size and orientation as the dataset file. A mask reaches the network through the
image's own :class:`~braintumor.preprocessing.HeadFrame` (the box is found on the
picture, then applied to the mask), so the outline and the pixels cannot drift apart.

Outline targets are int8 (N, H, W): 1 tumour, 0 background, and ``UNKNOWN`` (-1) for
every pixel of a slice whose outline nobody drew (SARTAJ and Br35H tumours): the
segmentation loss skips those slices. A No Tumor slice's outline is known and empty.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.classes import is_no_tumour
from braintumor.decoding import decode_file
from braintumor.preprocessing import Frame, framed_pixels

log = logging.getLogger(__name__)

#: The outline value of a slice whose tumour was never outlined.
UNKNOWN = -1


def frame_mask(frame: Frame, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/1 mask of the upload's shape -> uint8 0/1 in the model's input space, through
    the frame its picture was framed with."""
    framed = frame.apply((np.asarray(mask) > 0).astype(np.float32), size)
    return (framed >= 0.5).astype(np.uint8)


def outline_targets(data_dir: Path, masks_dir: Path, paths: list[str], labels: np.ndarray,
                    class_names: list[str], size: tuple[int, int], framing: str,
                    cache_dir: Path | None = None, workers: int = 4) -> np.ndarray:
    """int8 (N, H, W) outline targets of class-folder images given by relative ``paths``.

    ``masks_dir`` is the folder of ``<class>/<file>.png`` (``figshare-masks/training``);
    a tumour image without a mask there is ``UNKNOWN``, a No Tumor image empty.
    """
    masks_dir, data_dir = Path(masks_dir), Path(data_dir)
    cache = None
    if cache_dir is not None:
        import hashlib

        key = hashlib.sha256(repr((sorted(paths), size, framing, str(masks_dir))).encode())
        cache = Path(cache_dir) / f"outlines-{size[0]}x{size[1]}-{key.hexdigest()[:16]}.npz"
        if cache.is_file():
            stored = np.load(cache)
            order = {p: i for i, p in enumerate(stored["paths"].tolist())}
            return stored["masks"][[order[p] for p in paths]]
    no_tumour = {i for i, name in enumerate(class_names) if is_no_tumour(name)}

    def target(item: tuple[str, int]) -> np.ndarray:
        rel, label = item
        if label in no_tumour:
            return np.zeros(size, dtype=np.int8)
        mask_file = (masks_dir / rel).with_suffix(".png")
        if label >= len(class_names) or not mask_file.is_file():
            return np.full(size, UNKNOWN, dtype=np.int8)
        _, frame = framed_pixels(decode_file(str(data_dir / rel)), size, framing)
        mask = np.asarray(Image.open(mask_file).convert("L"))
        if mask.shape != frame.shape:
            raise ValueError(f"{mask_file} is {mask.shape}, its image {frame.shape}")
        return frame_mask(frame, mask, size).astype(np.int8)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        masks = np.stack(list(pool.map(target, zip(paths, labels.tolist(), strict=True))))
    log.info("outlines: %d known (%d with tumour), %d unknown", int((masks[:, 0, 0] >= 0).sum()),
             int((masks.max(axis=(1, 2)) > 0).sum()), int((masks[:, 0, 0] < 0).sum()))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, masks=masks, paths=np.array(paths))
    return masks
