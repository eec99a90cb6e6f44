"""The project's error hierarchy.

Every failure a client can cause or observe is one of these classes. Each carries the
spec's error code and HTTP status, so the API maps them to JSON in one place and the
CLI maps them to one line on stderr, and no caller has to know the table.
:data:`ERROR_CODES` is the table: these classes' codes and those the HTTP layer answers
with; the OpenAPI document, the README and the page's messages list exactly its codes.
"""

from __future__ import annotations


class BrainTumorError(Exception):
    """Base class: an error with a spec code and an HTTP status."""

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoFileError(BrainTumorError):
    code = "NO_FILE"
    status = 400


class EmptyFilenameError(BrainTumorError):
    code = "EMPTY_FILENAME"
    status = 400


class InvalidFileTypeError(BrainTumorError):
    code = "INVALID_FILE_TYPE"
    status = 415


class InvalidImageError(BrainTumorError):
    code = "INVALID_IMAGE"
    status = 400


class FileTooLargeError(BrainTumorError):
    code = "FILE_TOO_LARGE"
    status = 413


class InvalidSeriesError(BrainTumorError):
    """A series upload whose files do not make one series (mixed series, sizes,
    orientations; an unsafe or nested zip; a NIfTI that is not one 3-D volume)."""

    code = "INVALID_SERIES"
    status = 400


class ClassificationError(BrainTumorError):
    code = "CLASSIFICATION_ERROR"
    status = 500


class NotBrainMRIError(BrainTumorError):
    """The upload decoded, but is not a brain MRI (braintumor.ood): no diagnosis is given."""

    code = "NOT_BRAIN_MRI"
    status = 422


class ConfigError(BrainTumorError):
    """A setting is unusable; raised at start-up, never during a request."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class ModelLoadError(ConfigError):
    """The model named by MODEL_PATH cannot serve (missing, unreadable, wrong shape)."""


#: Codes only the HTTP layer answers with: Werkzeug's errors (api.errors), and the keys,
#: the rate limit and the queue (api.security's own classes).
HTTP_LAYER_CODES: dict[str, int] = {
    "BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405, "RATE_LIMITED": 429, "SERVER_BUSY": 503,
}

#: Every error code the API answers with, and its HTTP status, by status.
ERROR_CODES: dict[str, int] = dict(sorted(
    {**{cls.code: cls.status for cls in BrainTumorError.__subclasses__()},
     **HTTP_LAYER_CODES, BrainTumorError.code: BrainTumorError.status}.items(),
    key=lambda item: item[1]))
