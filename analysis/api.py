"""Reports API: ``GET /api/v1/reports/`` (what there is) and ``GET /api/v1/reports/<report>/``
(JSON, or CSV with ``?format=csv``). One view class per report, so the schema shows each
report's own rows."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import export, reports, services
from analysis import serializers as bodies
from analysis.filters import resolve
from recognition.serializers import ErrorSerializer

CACHE_HEADER = "X-Report-Cache"


class ReportCSVRenderer(BaseRenderer):
    """The report's rows as CSV, with a header line (``export.to_csv``)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        view = renderer_context["view"]
        return export.to_csv(view.report, data["rows"]).encode(self.charset)


DEFINITIONS = reports.__doc__.split("Definitions every report shares:", 1)[1].strip()


class ReportView(APIView):
    """Base of the per-report views; ``report`` is set by ``report_view``."""

    report: reports.Report
    renderer_classes = [JSONRenderer, ReportCSVRenderer]

    def get(self, request):
        params = bodies.ReportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = resolve(request.user, **params.validated_data)
        result = services.run(self.report.name, filters)
        response = Response(result.as_body(), headers={CACHE_HEADER: "hit" if result.cached else "miss"})
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="sightline-{self.report.name}.csv"'
        return response

    def options(self, request, *args, **kwargs):
        # The view's description is JSON whatever format was asked for: the CSV renderer knows only
        # report rows (and failed with a 500 on ``OPTIONS ...?format=csv``).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
        return super().options(request, *args, **kwargs)

    def handle_exception(self, exc):
        # Errors are JSON whatever format was asked for: a CSV of an error message helps nobody.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


def report_view(report: reports.Report) -> type[ReportView]:
    schema = extend_schema(
        tags=["reports"],
        summary=f"Report: {report.title.lower()}",
        description=f"{report.description}\n\n{DEFINITIONS}\n\nYou see your own data; staff see everyone's, or one "
                    "owner's with `owner`. `?format=csv` answers the same rows as CSV with a header line. Answers "
                    f"are cached for a short while (`{CACHE_HEADER}: hit` or `miss`) and renewed when a job of the "
                    "owner finishes or a person corrects a face or a person.",
        parameters=[
            bodies.ReportQuerySerializer,
            OpenApiParameter("format", str, enum=["json", "csv"], description="`csv` for CSV (default JSON)."),
        ],
        responses={
            (200, "application/json"): bodies.body_serializer(report),
            (200, "text/csv"): OpenApiTypes.STR,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        filters=False,
    )
    # Decorating the class (not the shared ``get``) gives each report a schema of its own.
    return schema(type(f"{report.name.title()}ReportView", (ReportView,), {"report": report}))


class ReportIndexView(APIView):
    @extend_schema(tags=["reports"], summary="The reports there are",
                   responses={200: bodies.ReportIndexSerializer(many=True)})
    def get(self, request):
        body = []
        for report in reports.REPORTS.values():
            url = request.build_absolute_uri(reverse(f"report-{report.name}"))
            body.append({"name": report.name, "title": report.title, "description": report.description,
                         "url": url, "csv_url": f"{url}?format=csv", "columns": report.column_names()})
        return Response(body)


REPORT_VIEWS = {name: report_view(report) for name, report in reports.REPORTS.items()}
