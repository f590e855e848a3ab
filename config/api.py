"""API-wide pieces: the JSON error format, what an outage becomes, and the serializers' base.

``as_refusal`` is the one place that says which failures of the outside world are refusals
rather than bugs (the database not answering → 503); the DRF exception handler and
``RefusalMiddleware`` (pages) both answer with it.
"""

from __future__ import annotations

import copy

from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.refusals import Refusal, Unavailable

DATABASE_UNAVAILABLE = "The database is not answering right now, so nothing was read or stored. Try again in a moment."
PAGE_TITLES = {503: "Temporarily unavailable", 507: "Storage full"}


def as_refusal(exc: BaseException) -> Refusal | None:
    """``exc`` as the refusal to answer with, or None for a bug (a 500, logged)."""
    if isinstance(exc, Refusal):
        return exc
    # Connection-level failures (server gone, restarting, not accepting connections); not
    # IntegrityError and friends, which are ours to handle.
    if isinstance(exc, (OperationalError, InterfaceError)):
        return Unavailable(DATABASE_UNAVAILABLE)
    return None


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer, reading its model once per class instead of once per instance.

    DRF works out every model field's serializer field for each serializer it creates (an
    upload's answer creates three: 0.5 ms of CPU for the asset's alone); here that is done once
    and each instance gets a deep copy, which is how DRF already hands out declared fields.
    Meta must not depend on the request, as it does not with plain ModelSerializers.
    """

    def get_fields(self):
        built = type(self).__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            type(self)._fields_built_once = built  # on this class only: subclasses build their own
        return copy.deepcopy(built)


class RefusalMiddleware:
    """Pages: a refusal or an outage that escapes a view becomes its message, as a styled page
    (JSON for clients that ask for it), never a 500; so does a form action opened by its address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # require_POST and friends answer an empty 405: a browser then shows its own error.
        if response.status_code == 405 and not response.streaming and not response.content:
            from config.views import method_not_allowed

            return method_not_allowed(request, response.get("Allow", ""))
        return response

    def process_exception(self, request, exception):
        refusal = as_refusal(exception)
        if refusal is None:
            return None
        if "application/json" in request.headers.get("Accept", "") or request.path.startswith("/api/"):
            return JsonResponse(refusal.as_body(), status=refusal.status)
        # No user and no messages on this page: both would ask the database, which may be
        # what just failed.
        return render(request, "errors/error.html", {
            "error_status": refusal.status, "error_title": PAGE_TITLES.get(refusal.status, "Not possible"),
            "error_message": refusal.message, "user": AnonymousUser(), "messages": [],
        }, status=refusal.status)


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
    if (refusal := as_refusal(exc)) is not None:
        return Response(refusal.as_body(), status=refusal.status)
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
