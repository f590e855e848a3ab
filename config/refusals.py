"""The one way Sightline refuses a request: ``Refusal`` (a sentence, a code, an HTTP status).

Services raise it (or a subclass naming the case: ``RejectedUpload``, ``EnrollmentError``,
``JobInProgress``, ...); the DRF exception handler (``config.api``) turns it into the API's JSON
error body, and pages show its message. No Django import here: the video probe child, which
runs without Django, raises it too.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request refused, with what to tell the caller.

    ``message``: a sentence for a person; ``code``: a stable slug for programs; ``status``: the
    HTTP status; ``details``: extra JSON fields of the error body (the faces found, say).
    Subclasses set defaults for ``code`` and ``status``.
    """

    code = "refused"
    status = 400

    def __init__(self, message: str, code: str | None = None, status: int | None = None, **details):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def as_body(self) -> dict:
        """The API's error body: ``{"message", "status", "code", ...details}``."""
        return {"message": self.message, "status": self.status, "code": self.code, **self.details}


class NotFound(Refusal):
    """A named thing the caller has not got (someone else's counts as missing: no hint it exists)."""

    code = "not_found"
    status = 404


class Unavailable(Refusal):
    """A server Sightline depends on is not answering (the database restarting, say): try again soon."""

    code = "unavailable"
    status = 503
