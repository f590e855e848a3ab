"""Browser pages of recognition, mounted at the site root (the dashboard is "/")."""

from django.urls import path

from recognition import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("counts/", views.dashboard_counts, name="dashboard-counts"),
    path("upload/", views.upload, name="upload"),
    path("assets/<int:asset_id>/", views.asset_detail, name="asset"),
    path("assets/<int:asset_id>/rerun/", views.asset_rerun, name="asset-rerun"),
    path("faces/<int:face_id>/assign/", views.face_assign, name="face-assign"),
    path("people/", views.people, name="people"),
    path("people/<int:subject_id>/", views.person_detail, name="person"),
]
