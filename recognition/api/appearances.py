"""Appearances: one person's track through one video (from when to when, their best face),
per video and per person; naming, "not this person" and "not a face" for a whole track."""

from __future__ import annotations

import django_filters
from django.http import FileResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.ownership import OwnedQuerysetMixin, owned_by
from config.refusals import NotFound
from media.models import Asset
from recognition import serializers as bodies
from recognition.api.common import JPEG, browser_cached
from recognition.models import Appearance
from recognition.people import corrections

TRACK_DOC = (" A decision about an appearance is one about every face of its track, and is kept like any"
             " human decision (re-runs included).")


class AppearanceFilter(django_filters.FilterSet):
    asset = django_filters.NumberFilter(field_name="asset_id")
    subject = django_filters.NumberFilter(field_name="best_face__subject_id", label="Appearances of this person.")
    unknown = django_filters.BooleanFilter(field_name="best_face__subject", lookup_expr="isnull",
                                           label="true: appearances of nobody known yet.")

    class Meta:
        model = Appearance
        fields = ["asset", "subject", "unknown"]


def appearances_of(user):
    return owned_by(Appearance.objects.select_related("best_face__subject", "asset"), user).filter(
        best_face__dismissed=False)


@extend_schema_view(
    list=extend_schema(tags=["appearances"], summary="Your video appearances",
                       description="Filter by `asset` or `subject` (person); dismissed tracks are left out."),
    retrieve=extend_schema(tags=["appearances"], summary="One appearance"),
)
class AppearanceViewSet(OwnedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        viewsets.GenericViewSet):
    queryset = Appearance.objects.select_related("best_face__subject", "asset")
    serializer_class = bodies.AppearanceSerializer
    filterset_class = AppearanceFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.filter(best_face__dismissed=False) if self.action == "list" else queryset

    def _answer(self, appearance):
        return Response(self.get_serializer(self.get_queryset().get(pk=appearance.pk)).data)

    def _best_face(self):
        appearance = self.get_object()
        if appearance.best_face is None:
            raise NotFound("This appearance has no face left.")
        return appearance, appearance.best_face

    @extend_schema(tags=["appearances"], summary="Say who this is (the whole track)", description=(
        "`subject`: one of your people, or null for unknown." + TRACK_DOC),
        request=bodies.FACE_SUBJECT_BODY, responses={200: bodies.AppearanceSerializer})
    def partial_update(self, request, *args, **kwargs):
        appearance, face = self._best_face()
        body = bodies.FaceSubjectSerializer(face, data=request.data)
        body.is_valid(raise_exception=True)
        corrections.say_who(face, body.validated_data["subject"])
        return self._answer(appearance)

    @extend_schema(tags=["appearances"], summary="Not this person (the whole track)",
                   description="The track's faces are taken away from the person (`subject`, default its current "
                               "one) and matched or clustered again without them." + TRACK_DOC,
                   request=bodies.FaceRejectSerializer, responses={200: bodies.AppearanceSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        appearance, face = self._best_face()
        corrections.reject_face(face, bodies.FaceRejectSerializer.person_named(request.data, appearance.owner_id))
        return self._answer(appearance)

    @extend_schema(tags=["appearances"], summary="Not a face (the whole track)", request=None,
                   description="Dismisses every face of the track as a false detection." + TRACK_DOC,
                   responses={200: bodies.AppearanceSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        appearance, face = self._best_face()
        corrections.dismiss_face(face)
        return self._answer(appearance)

    @extend_schema(tags=["appearances"], summary="The frame of the track's best face, as a small JPEG",
                   responses=JPEG)
    @action(detail=True, methods=["get"])
    def frame(self, request, pk=None):
        appearance = self.get_object()
        if not appearance.frame:
            raise NotFound("No frame is stored for this appearance.")
        return browser_cached(FileResponse(appearance.frame.open("rb"), content_type="image/jpeg"))


@extend_schema(tags=["appearances"], summary="Who appears when in this video",
               description="The video's appearances in time order: one per person's track, with its time range, "
                           "its person (from its faces' vote) and its best face.",
               responses={200: bodies.AppearanceSerializer(many=True)})
class AssetAppearancesView(generics.ListAPIView):
    serializer_class = bodies.AppearanceSerializer
    filter_backends: list = []

    def get_queryset(self):
        asset = owned_by(Asset.objects.all(), self.request.user).filter(pk=self.kwargs["asset_id"]).first()
        if asset is None:
            raise NotFound(f"You have no asset with id {self.kwargs['asset_id']}.")
        return appearances_of(self.request.user).filter(asset=asset).order_by("start_seconds", "id")
