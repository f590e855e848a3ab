"""Browser pages of recognition, mounted at the site root (the dashboard is "/")."""

from django.urls import path

from recognition.views import assets, dashboard, faces, library, people

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("counts/", dashboard.dashboard_counts, name="dashboard-counts"),
    path("upload/", dashboard.upload, name="upload"),
    path("assets/<int:asset_id>/", assets.asset_detail, name="asset"),
    path("assets/<int:asset_id>/rerun/", assets.asset_rerun, name="asset-rerun"),
    path("faces/<int:face_id>/assign/", faces.face_assign, name="face-assign"),
    path("faces/<int:face_id>/reject/", faces.face_reject, name="face-reject"),
    path("faces/<int:face_id>/dismiss/", faces.face_dismiss, name="face-dismiss"),
    path("faces/<int:face_id>/restore/", faces.face_restore, name="face-restore"),
    path("people/", people.people, name="people"),
    path("people/<int:subject_id>/", people.person_detail, name="person"),
    path("people/<int:subject_id>/rename/", people.person_rename, name="person-rename"),
    path("people/<int:subject_id>/hide/", people.person_hide, name="person-hide"),
    path("people/<int:subject_id>/merge/", people.person_merge, name="person-merge"),
    path("people/<int:subject_id>/delete/", people.person_delete, name="person-delete"),
    path("people/<int:subject_id>/erase/", people.person_erase, name="person-erase"),
    path("people/<int:subject_id>/photos/", people.person_photos, name="person-photos"),
    path("library/", library.library_page, name="library"),
    path("library/duplicates/", library.duplicates, name="library-duplicates"),
    path("faces/<int:face_id>/everywhere/", library.face_everywhere, name="face-everywhere"),
]
