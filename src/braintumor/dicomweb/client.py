"""A DICOMweb connection (dicomweb-client) whose failures are one sentence each.

The commands meet four failures a person must tell apart without a traceback: the server
cannot be reached, it refuses the credentials, the study is not there, the study has no
MR. Each becomes a :class:`DicomWebError` (one line on stderr, exit 2); the sentences
never quote what the server sent back, which may carry patient data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from braintumor.errors import BrainTumorError

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

T = TypeVar("T")

#: Environment variable read for the basic-auth password when --password is not given.
PASSWORD_ENV = "DICOMWEB_PASSWORD"
#: Seconds to wait for the server (connect, read).
TIMEOUT = (10.0, 120.0)
#: Attempts per request (the first and one retry).
RETRY_ATTEMPTS = 2


class DicomWebError(BrainTumorError):
    """A DICOMweb exchange failed; the message says which and why, in our own words."""

    code = "DICOMWEB_ERROR"
    status = 502


def connect(url: str, token: str | None = None, user: str | None = None,
            password: str | None = None) -> DICOMwebClient:
    """A :class:`dicomweb_client.DICOMwebClient` for ``url`` (the DICOMweb root).

    ``token`` is sent as ``Authorization: Bearer``; ``user`` with ``password`` (or the
    DICOMWEB_PASSWORD environment variable) as HTTP basic auth.
    """
    import requests
    from dicomweb_client.api import DICOMwebClient

    # dicomweb-client (INFO, DEBUG) and urllib3 (DEBUG) log every request's URL, which holds
    # the study and series UIDs: keep identifiers of a patient's images out of our logs
    for name in ("dicomweb_client", "urllib3"):
        quiet = logging.getLogger(name)
        quiet.setLevel(max(quiet.getEffectiveLevel(), logging.WARNING))
    if not url.startswith(("http://", "https://")):
        raise DicomWebError(f"the DICOMweb URL must start with http:// or https://, got {url!r}")
    session = requests.Session()
    if user:
        session.auth = (user, password if password is not None
                        else os.environ.get(PASSWORD_ENV, ""))
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = DICOMwebClient(url.rstrip("/"), session=session, headers=headers, timeout=TIMEOUT)
    # dicomweb-client retries any failure five times with exponential back-off (30 s
    # before "cannot reach"); one retry after a second covers a transient error, and
    # `watch` polls again anyway
    client.set_http_retry_params(max_attempts=RETRY_ATTEMPTS, wait_exponential_multiplier=500)
    return client


def call(what: str, url: str, action: Callable[[], T]) -> T:
    """Run one DICOMweb request; its failures become a :class:`DicomWebError` sentence."""
    import requests

    try:
        return action()
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise DicomWebError(
                f"the DICOMweb server at {url} refused the credentials (HTTP {status}) "
                f"while {what}: give --token, or --user with --password "
                f"or {PASSWORD_ENV}") from None
        raise DicomWebError(
            f"the DICOMweb server at {url} answered HTTP {status} while {what}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise DicomWebError(
            f"cannot reach the DICOMweb server at {url} ({type(exc).__name__}) while "
            f"{what}") from None
    except requests.exceptions.RequestException as exc:
        raise DicomWebError(
            f"the DICOMweb request failed while {what} ({type(exc).__name__})") from None
    except ValueError as exc:  # an answer that is not DICOM JSON or multipart DICOM
        raise DicomWebError(
            f"the DICOMweb server at {url} sent an answer that could not be read while "
            f"{what} ({type(exc).__name__})") from None


def tag_value(item: dict, tag: str) -> Any:
    """The first value of one attribute of a DICOM JSON object (QIDO-RS answer), or None."""
    values = (item.get(tag) or {}).get("Value") or [None]
    return values[0]
