"""Reports API under /api/v1/reports/."""

from django.urls import path

from analysis.api import REPORT_VIEWS, ReportIndexView

urlpatterns = [
    path("reports/", ReportIndexView.as_view(), name="report-index"),
    *(path(f"reports/{name}/", view.as_view(), name=f"report-{name}") for name, view in REPORT_VIEWS.items()),
]
