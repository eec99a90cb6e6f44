"""Feature-space distance: how far an image's vectors are from the training scans'.

Why this check: a softmax classifier answers every input with four probabilities that add
up to one, and a network is often *confident* on noise or a photograph, so the calibrated
confidence alone does not tell a scan from something else. The features the final Dense
layer reads (the pooled 256 numbers of the compact CNN) do: for the training scans they
sit in four compact clusters, and an input that is not a brain MRI lands far from all of
them. The distance is measured as Lee et al. (2018) do, "A Simple Unified Framework for
Detecting Out-of-Distribution Samples and Adversarial Attacks": a Gaussian per class with
its own mean and one covariance shared by the classes (tied), and the score of an image
is its squared Mahalanobis distance to the nearest class mean.

The covariance of 256 features from a few thousand images is noisy and may be singular
(ReLU features that never fire), so it is shrunk. Each feature is first scaled by its
within-class spread, then the Ledoit-Wolf estimate shrinks the correlation matrix towards
the identity with the analytically optimal weight: in the original units that is
shrinkage towards the diagonal, which keeps features of very different scales comparable.
A floor on the per-feature variance keeps dead features from dividing by zero.

The score is the squared distance divided by the number of features: for an image like
the training scans it is about 1 (a chi-square over its degrees of freedom), and it grows
with how unlike them an image is. Scoring one image is a (D x D) matrix-vector product and
four subtractions: some 30 microseconds for D = 256, so it adds nothing to a request.

The same fit serves any vector: the detector uses it on the penultimate features and on
the picture's layout (:mod:`braintumor.ood.layout`). :func:`pack` stores several named
fits in one ``.npz``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

#: Name of the method recorded in the model's metadata.
METHOD = "mahalanobis-tied-ledoit-wolf"
#: Format of the packed arrays.
PACK_FORMAT = 1

#: Variance floor relative to the mean within-class variance of the features.
VARIANCE_FLOOR = 1e-3


@dataclass(frozen=True)
class MahalanobisStats:
    """Per-class feature means and the shared precision matrix, fitted on training scans.

    ``means`` is (classes, D) and ``precision`` (D, D), both float32 when stored. The
    whitening of the means is precomputed lazily by :meth:`score`.
    """

    means: np.ndarray
    precision: np.ndarray
    shrinkage: float = 0.0

    @property
    def dims(self) -> int:
        return int(self.means.shape[1])

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays under ``prefix.`` names, float32 (about 260 KB for D=256)."""
        return {f"{prefix}.means": self.means.astype(np.float32),
                f"{prefix}.precision": self.precision.astype(np.float32),
                f"{prefix}.shrinkage": np.asarray(self.shrinkage, dtype=np.float32)}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> MahalanobisStats:
        means = np.asarray(arrays[f"{prefix}.means"], dtype=np.float64)
        precision = np.asarray(arrays[f"{prefix}.precision"], dtype=np.float64)
        shrinkage = float(arrays[f"{prefix}.shrinkage"])
        if means.ndim != 2 or precision.shape != (means.shape[1], means.shape[1]):
            raise ValueError(f"inconsistent {prefix} statistics: means {means.shape}, "
                             f"precision {precision.shape}")
        return cls(means=means, precision=precision, shrinkage=shrinkage)

    def scorer(self) -> MahalanobisScorer:
        return MahalanobisScorer(self)


class MahalanobisScorer:
    """Scores features against fitted statistics; built once per loaded model.

    The precision is factored once (P = L L^T), so a score is one matrix product:
    ``|| (f - mu_k) L ||^2`` for each class k, the minimum over k, divided by D.
    """

    def __init__(self, stats: MahalanobisStats) -> None:
        precision = np.asarray(stats.precision, dtype=np.float64)
        precision = (precision + precision.T) / 2.0
        try:
            factor = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:  # not positive definite after float32 storage
            eigval, eigvec = np.linalg.eigh(precision)
            factor = eigvec * np.sqrt(np.clip(eigval, 1e-12, None))
        self.factor = factor.astype(np.float32)
        self.whitened_means = (np.asarray(stats.means, dtype=np.float64) @ factor).astype(
            np.float32)
        self.dims = stats.dims

    def score(self, features: np.ndarray) -> np.ndarray:
        """Mean squared Mahalanobis distance per feature to the nearest class, shape (N,).

        The statistics read the first ``dims`` entries of each vector: an outline model's
        head input is the backbone's pooled features followed by its gated outline
        features, and its statistics describe the backbone's part alone
        (:func:`braintumor.training.ood_fit.fit_statistics`).
        """
        f = np.asarray(features, dtype=np.float32)
        f = f.reshape(-1, f.shape[-1])
        if f.shape[1] < self.dims:
            raise ValueError(f"features of {f.shape[1]} values for statistics of {self.dims}")
        f = f[:, :self.dims]
        z = f @ self.factor  # (N, D)
        d2 = ((z[:, None, :] - self.whitened_means[None, :, :]) ** 2).sum(-1)  # (N, K)
        return (d2.min(axis=1) / self.dims).astype(np.float64)


def ledoit_wolf_shrinkage(x: np.ndarray) -> float:
    """Ledoit & Wolf (2004)'s optimal weight of the identity target for centred rows ``x``.

    ``x`` is (n, p), already centred (and here also scaled to unit variance per column).
    With S = x^T x / n and mu = tr(S) / p: delta = ||S - mu I||^2, beta = the average
    squared distance of the rank-one estimates x_i x_i^T to S over n, and the weight is
    min(beta, delta) / delta. Computed without forming n matrices of p x p.
    """
    n, p = x.shape
    sample = x.T @ x / n
    mu = float(np.trace(sample)) / p
    delta = float(((sample - mu * np.eye(p)) ** 2).sum()) / p
    if delta <= 0.0:
        return 1.0
    norms4 = float(((x**2).sum(axis=1) ** 2).sum())
    beta = (norms4 - n * float((sample**2).sum())) / (n * n * p)
    return float(min(max(beta, 0.0), delta) / delta)


def fit(features: np.ndarray, labels: np.ndarray, classes: int) -> MahalanobisStats:
    """Class means and the shrunk tied precision of ``features`` (N, D) with ``labels`` (N,).

    A class without images would have no mean; fitting refuses rather than guessing.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError("features must be (N, D) with one label per row")
    counts = np.bincount(labels, minlength=classes)
    if (counts[:classes] == 0).any() or len(counts) > classes:
        raise ValueError(f"every class needs training images, got counts {counts.tolist()}")
    means = np.stack([features[labels == k].mean(axis=0) for k in range(classes)])
    centred = features - means[labels]
    variance = centred.var(axis=0)
    floor = VARIANCE_FLOOR * max(float(variance.mean()), 1e-12)
    scale = np.sqrt(np.maximum(variance, floor))
    standard = centred / scale
    shrinkage = ledoit_wolf_shrinkage(standard)
    correlation = standard.T @ standard / len(standard)
    mu = float(np.trace(correlation)) / correlation.shape[0]
    shrunk = (1.0 - shrinkage) * correlation + shrinkage * mu * np.eye(correlation.shape[0])
    precision_std = np.linalg.inv(shrunk)
    precision = precision_std / scale[:, None] / scale[None, :]
    precision = (precision + precision.T) / 2.0
    return MahalanobisStats(means=means, precision=precision, shrinkage=shrinkage)


def pack(fits: dict[str, MahalanobisStats]) -> bytes:
    """Several named fits as one uncompressed ``.npz`` in memory."""
    arrays: dict[str, np.ndarray] = {"format": np.asarray(PACK_FORMAT, dtype=np.int32)}
    for name, stats in fits.items():
        arrays.update(stats.to_arrays(name))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, MahalanobisStats]:
    """The named fits :func:`pack` stored; ValueError when the data is not such a pack."""
    try:
        arrays = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises OSError, ValueError, EOFError... for garbage
        raise ValueError(f"not a packed set of OOD statistics ({type(exc).__name__})") from None
    with arrays:
        if "format" not in arrays.files or int(arrays["format"]) != PACK_FORMAT:
            raise ValueError("not a packed set of OOD statistics of a known format")
        names = sorted({key.rsplit(".", 1)[0] for key in arrays.files if "." in key})
        return {name: MahalanobisStats.from_arrays(arrays, name) for name in names}
