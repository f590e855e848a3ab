"""Error pages: JSON for API clients, a styled page for browsers.

Neither reveals anything of the URL conf, the settings or the request: with ``DEBUG`` off
(the default) Django routes every error here.
"""

from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static

# status: (code, message for API clients, page title, message for people)
ERRORS = {
    400: ("bad_request", "Bad request.", "Bad request",
          "The request could not be understood. Go back, reload the page and try again."),
    403: ("permission_denied", "Permission denied.", "Not allowed",
          "You do not have permission to see this page. Log in with the account that owns it."),
    404: ("not_found", "Not found.", "Page not found",
          "There is nothing here. The address may be mistyped, or the page was removed or belongs to someone else."),
}
METHOD_NOT_ALLOWED = ("method_not_allowed", "Method not allowed.", "Not possible this way",
                      "This address is where a page's button sends its form; it cannot be opened by itself. "
                      "Go back and use the button.")
CSRF_FAILURE = ("csrf_failed", "CSRF check failed.", "Form expired",
                "This form was open too long, or your browser blocks cookies for this site. "
                "Reload the page and send it again.")


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def _error(request, status: int, code: str, api_message: str, title: str, message: str):
    if _wants_json(request):
        return JsonResponse({"message": api_message, "status": status, "code": code}, status=status)
    return render(request, "errors/error.html",
                  {"error_status": status, "error_title": title, "error_message": message}, status=status)


def bad_request(request, exception):
    return _error(request, 400, *ERRORS[400])


def permission_denied(request, exception):
    return _error(request, 403, *ERRORS[403])


def page_not_found(request, exception):
    return _error(request, 404, *ERRORS[404])


def method_not_allowed(request, allowed: str):
    """A page's form action opened by its address (Django's own 405 is an empty page)."""
    response = _error(request, 405, *METHOD_NOT_ALLOWED)
    response["Allow"] = allowed
    return response


def csrf_failure(request, reason=""):
    return _error(request, 403, *CSRF_FAILURE)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(
            {"message": "Internal server error; it has been logged.", "status": 500, "code": "server_error"},
            status=500,
        )
    # No request context: whatever failed may fail again while rendering it.
    return HttpResponseServerError(loader.get_template("500.html").render())


def favicon(request):
    """For browsers and tools that ask for /favicon.ico without reading the page's icon link."""
    return redirect(static("favicon.svg"))
