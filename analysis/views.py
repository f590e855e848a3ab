"""The report pages under /reports/: the filter form, a chart, the table under it, a CSV link.
Same filters, same rows and same refusals as the API (``filters.resolve``), shown in words."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analysis import pages, reports, services
from analysis.forms import ReportFilterForm
from config.refusals import Refusal

# Tabs, in order; "summary" is the landing page at /reports/.
PAGES = ("summary", "daily", "people", "latency", "failures")


@login_required
@require_GET
def report_page(request, report: str = "summary"):
    if report not in PAGES:
        raise Http404("No such report.")
    definition = reports.get(report)
    form = ReportFilterForm(request.GET, viewer=request.user)
    context = {"report": definition, "form": form, "tabs": _tabs(report, form), "refusal": None}
    status = 200
    if not form.is_valid():
        status = 400
    else:
        try:
            result = services.run(report, form.filters())
        except Refusal as refusal:
            context["refusal"], status = refusal, refusal.status
        else:
            context.update({
                "result": result,
                "chart": pages.chart_for(report, result.rows),
                "rows": result.rows[: pages.ROWS_ON_PAGE],
                "more_rows": max(0, len(result.rows) - pages.ROWS_ON_PAGE),
                "csv_url": _csv_url(report, form),
            })
    return render(request, f"analysis/{report}.html", context, status=status)


def _csv_url(report: str, form: ReportFilterForm) -> str:
    query = form.query_string()
    return f"{reverse(f'report-{report}')}?format=csv" + (f"&{query}" if query else "")


def _tabs(current: str, form: ReportFilterForm) -> list[dict]:
    query = form.query_string()
    tabs = []
    for name in PAGES:
        url = reverse("reports") if name == "summary" else reverse("report-page", args=[name])
        tabs.append({"name": name, "title": "Overview" if name == "summary" else reports.REPORTS[name].title,
                     "url": f"{url}?{query}" if query else url, "current": name == current})
    return tabs
