"""Recognition API, one module per resource: assets (uploads), jobs, faces, people
(subjects) and their examples, and the realtime requests (recognize, verify).

Thin views: querysets are owner-scoped in ``get_queryset`` (other users' rows answer 404), the
work happens in services, and their refusals (``config.refusals``) become the API's JSON error
body in the one exception handler, ``config.api``.
"""
