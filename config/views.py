"""Error pages that answer API clients in JSON and browsers in HTML."""

from django.http import JsonResponse
from django.views import defaults


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def page_not_found(request, exception):
    if _wants_json(request):
        return JsonResponse({"message": "Not found.", "status": 404, "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(
            {"message": "Internal server error; it has been logged.", "status": 500, "code": "server_error"},
            status=500,
        )
    return defaults.server_error(request)


def bad_request(request, exception):
    if _wants_json(request):
        return JsonResponse({"message": "Bad request.", "status": 400, "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _wants_json(request):
        return JsonResponse({"message": "Permission denied.", "status": 403, "code": "permission_denied"}, status=403)
    return defaults.permission_denied(request, exception)
