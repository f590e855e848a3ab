"""Recognition API under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from recognition.api import appearances, assets, faces, jobs, people, realtime

router = SimpleRouter()
router.register("assets", assets.AssetViewSet, basename="asset")
router.register("jobs", jobs.JobViewSet, basename="job")
router.register("faces", faces.FaceViewSet, basename="face")
router.register("subjects", people.SubjectViewSet, basename="subject")
router.register("appearances", appearances.AppearanceViewSet, basename="appearance")

urlpatterns = [
    *router.urls,
    path("assets/<int:asset_id>/appearances/", appearances.AssetAppearancesView.as_view(), name="asset-appearances"),
    path("recognize/", realtime.RecognizeView.as_view(), name="recognize"),
    path("verify/", realtime.VerifyView.as_view(), name="verify"),
]
