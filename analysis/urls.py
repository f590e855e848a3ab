"""Report pages under /reports/."""

from django.urls import path

from analysis import views

urlpatterns = [
    path("reports/", views.report_page, name="reports"),
    path("reports/<slug:report>/", views.report_page, name="report-page"),
]
