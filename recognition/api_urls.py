"""Recognition API under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from recognition import api

router = SimpleRouter()
router.register("assets", api.AssetViewSet, basename="asset")
router.register("jobs", api.JobViewSet, basename="job")
router.register("faces", api.FaceViewSet, basename="face")
router.register("subjects", api.SubjectViewSet, basename="subject")

urlpatterns = [
    *router.urls,
    path("recognize/", api.RecognizeView.as_view(), name="recognize"),
    path("verify/", api.VerifyView.as_view(), name="verify"),
]
