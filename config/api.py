"""API-wide pieces: the JSON error format."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.refusals import Refusal


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field in {"detail", "non_field_errors"} else f"{field}: {message}"
    if isinstance(detail, (list, tuple)) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    """Our refusals as they are; DRF's own errors with a top-level human ``message``.

    ``{"message": "email: This field is required.", "status": 400, "code": "invalid",
    "errors": {...}}``: clients show ``message``; forms use ``errors`` (DRF's per-field detail).
    """
    if isinstance(exc, Refusal):
        return Response(exc.as_body(), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    body = {"message": _first_message(data), "status": response.status_code}
    if isinstance(data, dict) and set(data) - {"detail"}:
        body["errors"] = data
    elif isinstance(data, list):
        body["errors"] = {"non_field_errors": data}
    # simplejwt puts a precise code ("token_not_valid") in the body; otherwise the exception's.
    code = data.get("code") if isinstance(data, dict) else None
    body["code"] = str(code or getattr(exc, "default_code", "error"))
    response.data = body
    return response
