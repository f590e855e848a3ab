"""OpenAPI schema additions that hold for every operation (a drf-spectacular postprocessing hook).

Views document what is particular to them; the refusals any API view can give are added here,
in the one error body of ``config.api``, so clients (and the schema fuzzing test) can rely on
the schema for every answer the API gives.
"""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": "Every refusal: a sentence for people, the HTTP status, a stable code for programs; "
                   "`errors` holds per-field messages when the request's fields were invalid. Some "
                   "refusals add fields of their own.",
    "properties": {
        "message": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {}},
    },
    "required": ["message", "status", "code"],
}

# status: (when, applies to the operation?)
COMMON_REFUSALS = {
    400: ("The request's parameters or body are invalid.",
          lambda op: "requestBody" in op or any(p.get("in") == "query" for p in op.get("parameters", []))),
    401: ("Not signed in, or the token is invalid or expired.", lambda op: True),
    403: ("Not allowed (a session without its CSRF token, or someone else's data for staff only).",
          lambda op: True),
    404: ("Nothing of yours with this id (someone else's counts as missing), or no such page.",
          lambda op: any(p.get("in") == "path" or p.get("name") == "page" for p in op.get("parameters", []))),
    415: ("The body's content type is not one this operation reads.", lambda op: "requestBody" in op),
    429: ("Too many requests; `Retry-After` says when to try again.", lambda op: True),
}
METHODS = {"get", "put", "patch", "post", "delete"}


def document_refusals(result, generator, request, public):
    """Add the API's common refusals (``COMMON_REFUSALS``) to every ``/api/`` operation that does
    not document them itself."""
    # ``Error`` is also the component of ``ErrorSerializer``, which views name for their own
    # refusals: the same body.
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, (description, applies) in COMMON_REFUSALS.items():
                if applies(operation) and str(status) not in responses:
                    responses[str(status)] = {"description": description, "content": error}
    return result
