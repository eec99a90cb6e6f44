"""A nearest-neighbour memory of the training scans' features: the classifier's vote.

Why it exists: on the validation split (carved out of Training, near-duplicates kept on
one side; Testing was never looked at for this), a weighted k-nearest-neighbour vote in
the CNN's own penultimate feature space classified better than the CNN's softmax head:
95.9% against 92.7% accuracy for the shipped compact model, and a lower log-loss. MRI
collections hold many slices of the same patients and scanners; the network learns
features in which those slices sit close together, and a vote among the closest training
scans uses that directly, where one linear layer has to draw four flat boundaries.

How it is used: the features of every Training scan, L2-normalised, are stored with the
model (``braintumor-memory.npz`` in the ``.keras`` archive, float16: 2.9 MB for 5,708
scans of 256 features). For an input, the cosine similarity to every stored vector is one
matrix product (about 1.5 MFLOP, well under a millisecond); the ``k`` most similar vote
with weights ``softmax(similarity / tau)``, and the head's calibrated probabilities keep a
share ``mix``, so no class is ever given exactly zero. ``k``, ``tau`` and ``mix`` are
chosen on the validation split with the memory holding only the training part, then the
memory is rebuilt from all of Training.

What the vote may decide (``head_class``): the vote finds the training scans that look
most alike, and in a dataset whose classes are confounded with their collections "alike"
often means "from the same collection". A tumour slice from a collection whose training
scans are mostly healthy then finds healthy neighbours, and the vote turns a tumour the
head saw into "No Tumor". With ``head_class`` set (the index of "No Tumor"), the head's
probability of that class is kept as it is and the vote only shares the rest out among
the other classes: whether there is a tumour stays the network's call, and the memory
refines only which tumour. The recipe chooses (``--memory-scope``).

Seeing the mirror image too (``flip``): brains are roughly left-right symmetric and the
network was trained with horizontal flips, so a scan and its mirror image are the same
evidence seen twice. With ``flip`` the vector that is stored and looked up is the sum of
the normalised features of the scan and of its mirror image, and the head's share is the
mean of the two calibrated heads (:func:`with_mirror`); the network runs twice per image.
Whether to use it is one more setting chosen on the validation split (for the shipped
model: 97.2% against 95.9% without).

The vote runs inside the model's compiled function (:mod:`braintumor.model.loaded`), so
the probabilities and the class come from one call, and Grad-CAM explains the class the
vote chose. It explains it through the network's own score for that class (the head's
logit, as Grad-CAM prescribes): when all ``k`` neighbours agree the vote is flat, and its
gradient says nothing about where the evidence lies.
"""

from __future__ import annotations

import io
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintumor.errors import ModelLoadError
from braintumor.model.archive import read_archive_entry

#: Archive entry (or ``<model>.memory.npz`` sidecar) holding the memory's arrays.
MEMORY_ARCHIVE_ENTRY = "braintumor-memory.npz"

METHOD = "cosine-knn-softmax-vote"

#: The grid searched on the validation split.
K_GRID = (5, 10, 20)
TAU_GRID = (0.01, 0.02, 0.05)
MIX_GRID = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class FeatureMemory:
    """Normalised training features, their labels and the vote's settings."""

    features: np.ndarray  # (M, D) float32, rows of unit length
    labels: np.ndarray  # (M,) int
    classes: int
    k: int = 10
    tau: float = 0.02
    mix: float = 0.1
    #: Vectors are :func:`with_mirror` queries (an image and its mirror image), not plain
    #: features.
    flip: bool = False
    #: A class whose probability the head alone decides (-1: the vote decides every class).
    head_class: int = -1

    @classmethod
    def build(cls, features: np.ndarray, labels: np.ndarray, classes: int, k: int = 10,
              tau: float = 0.02, mix: float = 0.1, flip: bool = False,
              head_class: int = -1) -> FeatureMemory:
        return cls(normalise(features), np.asarray(labels, dtype=np.int32), classes,
                   min(k, len(labels)), tau, mix, flip, head_class)

    @property
    def dims(self) -> int:
        return int(self.features.shape[1])

    def describe(self) -> dict:
        """The JSON part of the model's metadata (the arrays go beside it)."""
        described = {"method": METHOD, "k": self.k, "tau": self.tau, "mix": self.mix,
                     "flip": self.flip, "size": len(self.labels), "dims": self.dims}
        if self.head_class >= 0:
            described["head_class"] = self.head_class
        return described

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, features=self.features.astype(np.float16), labels=self.labels,
                 settings=np.array([self.k, self.tau, self.mix, self.classes, self.flip,
                                    self.head_class], np.float64))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> FeatureMemory:
        with np.load(io.BytesIO(data)) as arrays:
            settings = arrays["settings"].tolist()
            k, tau, mix, classes = settings[:4]
            flip = len(settings) > 4 and bool(settings[4])  # memories before flip: no
            head_class = int(settings[5]) if len(settings) > 5 else -1
            return cls(normalise(arrays["features"].astype(np.float32)),
                       arrays["labels"].astype(np.int32), int(classes), int(k), float(tau),
                       float(mix), flip, head_class)

    def vote(self, features, head_probabilities):
        """Probabilities of the vote mixed with the head's, as TensorFlow ops.

        ``features`` (N, D) and ``head_probabilities`` (N, classes) are tensors or arrays;
        the result is a tensor. Usable inside ``tf.function`` (the bank is a constant).
        """
        import tensorflow as tf  # heavy: only where a model runs, not to read a memory file

        bank = tf.constant(self.features)
        onehot = tf.constant(np.eye(self.classes, dtype=np.float32)[self.labels])
        similarity = tf.matmul(tf.math.l2_normalize(features, axis=1), bank, transpose_b=True)
        top, index = tf.math.top_k(similarity, k=self.k)
        weights = tf.nn.softmax(top / self.tau, axis=1)
        votes = tf.reduce_sum(weights[..., None] * tf.gather(onehot, index), axis=1)
        head = tf.cast(head_probabilities, tf.float32)
        mixed = (1.0 - self.mix) * votes + self.mix * head
        if self.head_class < 0:
            return mixed
        kept = tf.one_hot(self.head_class, self.classes, dtype=tf.float32)
        others = mixed * (1.0 - kept)
        share = others / tf.maximum(tf.reduce_sum(others, axis=1, keepdims=True), 1e-12)
        head_kept = head[:, self.head_class:self.head_class + 1]
        return head_kept * kept + (1.0 - head_kept) * share

    def vote_numpy(self, features: np.ndarray, head_probabilities: np.ndarray) -> np.ndarray:
        """:meth:`vote` on NumPy arrays, for fitting and evaluation.

        In a process that has TensorFlow loaded (training, the Keras path), TensorFlow's
        own operations: the answer is then the compiled function's to the last bit, and a
        near-tie for the k-th neighbour is decided as serving decides it. Without it, in
        NumPy (:func:`vote_in_numpy`, what ONNX Runtime's serving path uses).
        """
        if not _tensorflow_loaded():
            return vote_in_numpy(self, features, head_probabilities)
        return np.asarray(self.vote(np.asarray(features, np.float32),
                                    np.asarray(head_probabilities, np.float32)))


def _tensorflow_loaded() -> bool:
    """Whether this process has imported TensorFlow (never imports it)."""
    return "tensorflow" in sys.modules


def with_mirror(features, head_probabilities, mirrored_features, mirrored_head_probabilities):
    """(query, head probabilities) of images seen together with their mirror images.

    The one definition that fitting and serving (inside the compiled function, and the
    ONNX runtime) share, so the stored vectors and the looked-up ones are made alike.
    Returns tensors; NumPy arrays, computed in NumPy, for NumPy arrays in a process
    without TensorFlow loaded (with it, its operations, as :meth:`FeatureMemory.vote_numpy`).
    """
    if not _tensorflow_loaded() and all(isinstance(value, np.ndarray) for value in (
            features, head_probabilities, mirrored_features, mirrored_head_probabilities)):
        query = l2_normalize(features) + l2_normalize(mirrored_features)
        head = (np.asarray(head_probabilities, np.float32)
                + np.asarray(mirrored_head_probabilities, np.float32)) / np.float32(2.0)
        return query, head
    import tensorflow as tf  # heavy: only where a model runs

    query = (tf.math.l2_normalize(tf.cast(features, tf.float32), axis=1)
             + tf.math.l2_normalize(tf.cast(mirrored_features, tf.float32), axis=1))
    head = (tf.cast(head_probabilities, tf.float32)
            + tf.cast(mirrored_head_probabilities, tf.float32)) / 2.0
    return query, head


# --- the vote in NumPy: the same operations as FeatureMemory.vote ------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.asarray(x, np.float32)
    shifted = shifted - shifted.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=axis, keepdims=True)).astype(np.float32)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of unit length, as ``tf.math.l2_normalize(x, axis=1)`` (epsilon 1e-12 on the
    squared norm)."""
    x = np.asarray(x, np.float32)
    squared = np.sum(x * x, axis=1, keepdims=True)
    return (x / np.sqrt(np.maximum(squared, np.float32(1e-12)))).astype(np.float32)


#: Up to this many queries the memory's similarities are not a BLAS product (see
#: :func:`vote_in_numpy`).
_SMALL_BATCH = 8


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each row's ``k`` largest values in decreasing order, equal values
    by increasing index: ``tf.math.top_k``'s order. A partition finds each row's k-th
    value, and only the values at least that large are sorted."""
    kth = np.partition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k]
    rows = []
    for row, limit in zip(values, kth, strict=True):
        candidates = np.flatnonzero(row >= limit)
        rows.append(candidates[np.lexsort((candidates, -row[candidates]))][:k])
    return np.stack(rows) if rows else np.zeros((0, k), np.int64)


def vote_in_numpy(memory: FeatureMemory, features: np.ndarray,
                  head_probabilities: np.ndarray) -> np.ndarray:
    """:meth:`FeatureMemory.vote` in NumPy: the vote's probabilities mixed with the head's
    (TensorFlow's ``l2_normalize``, ``top_k`` with ties to the lower index, softmax over
    ``similarity / tau``)."""
    query = l2_normalize(features)
    if len(query) <= _SMALL_BATCH:
        # NumPy's own loop, one thread: a BLAS product spreads a request's 1.6 MFLOP over
        # every core's thread, which with several workers per machine costs 10-20 ms
        similarity = np.einsum("md,nd->nm", memory.features, query)  # (N, M)
    else:
        similarity = np.ascontiguousarray((memory.features @ query.T).T)
    index = _top_k(similarity, memory.k)
    top = np.take_along_axis(similarity, index, axis=1)
    weights = softmax(top / np.float32(memory.tau), axis=1)
    onehot = np.eye(memory.classes, dtype=np.float32)[memory.labels]
    votes = np.sum(weights[..., None] * onehot[index], axis=1)
    head = np.asarray(head_probabilities, np.float32)
    mix = np.float32(memory.mix)
    mixed = (np.float32(1.0) - mix) * votes + mix * head
    if memory.head_class < 0:
        return mixed.astype(np.float32)
    kept = np.eye(memory.classes, dtype=np.float32)[memory.head_class]
    others = mixed * (np.float32(1.0) - kept)
    share = others / np.maximum(others.sum(axis=1, keepdims=True), np.float32(1e-12))
    head_kept = head[:, memory.head_class:memory.head_class + 1]
    return (head_kept * kept + (np.float32(1.0) - head_kept) * share).astype(np.float32)


def normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _nll(probabilities: np.ndarray, labels: np.ndarray,
         allowed: np.ndarray | None = None, weights: np.ndarray | None = None) -> float:
    if allowed is not None:  # a partial label: the mass on its allowed classes
        picked = (probabilities * allowed).sum(axis=1)
    else:
        picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.average(np.log(np.clip(picked, 1e-12, 1.0)), weights=weights))


def _accuracy(probabilities: np.ndarray, labels: np.ndarray,
              allowed: np.ndarray | None = None, weights: np.ndarray | None = None) -> float:
    top = probabilities.argmax(1)
    right = allowed[np.arange(len(top)), top] > 0 if allowed is not None else top == labels
    return float(np.average(right, weights=weights))


def choose_settings(train_features: np.ndarray, train_labels: np.ndarray,
                    val_features: np.ndarray, val_labels: np.ndarray,
                    val_head_probabilities: np.ndarray, classes: int,
                    flip: bool = False, head_class: int = -1,
                    val_allowed: np.ndarray | None = None,
                    val_weights: np.ndarray | None = None) -> tuple[dict, list]:
    """The (k, tau, mix) that classify the validation split best, and the whole grid.

    The memory holds the training part only, so a validation scan never finds itself.
    Accuracy decides, the log-loss breaks ties. ``flip`` says the vectors are
    :func:`with_mirror` queries; it is recorded in each row. ``val_allowed`` (N, classes)
    marks, per validation scan, the classes that count as right (a partial label such as
    "a tumour of unknown type" allows three). ``val_weights`` weigh the validation scans
    (two validation sets of unequal sizes can count alike). Returns (best row, all rows).
    """
    rows = []
    for k, tau, mix in itertools.product(K_GRID, TAU_GRID, MIX_GRID):
        memory = FeatureMemory.build(train_features, train_labels, classes, k, tau, mix,
                                     head_class=head_class)
        probs = memory.vote_numpy(val_features, val_head_probabilities)
        rows.append({"k": k, "tau": tau, "mix": mix, "flip": flip,
                     "accuracy": _accuracy(probs, val_labels, val_allowed, val_weights),
                     "nll": _nll(probs, val_labels, val_allowed, val_weights)})
    return best_setting(rows), rows


def best_setting(rows: list[dict]) -> dict:
    """The row with the best validation accuracy; the lower log-loss breaks ties."""
    return max(rows, key=lambda r: (round(r["accuracy"], 6), -r["nll"]))


def read_memory(model_path: Path, classes: int) -> FeatureMemory | None:
    """The model file's nearest-neighbour memory, or None when it has none.

    A memory that does not fit the model stops start-up (ModelLoadError): serving the head
    alone would silently change every answer from what the model card reports.
    """
    data = read_archive_entry(model_path, MEMORY_ARCHIVE_ENTRY)
    if data is None:
        return None
    try:
        memory = FeatureMemory.from_npz(data)
    except (KeyError, ValueError, OSError) as exc:
        raise ModelLoadError("MODEL_PATH", f"unreadable nearest-neighbour memory: {exc}"
                             ) from None
    if memory.classes != classes:
        raise ModelLoadError("MODEL_PATH", f"the memory has {memory.classes} classes, the "
                                           f"model {classes}")
    return memory
