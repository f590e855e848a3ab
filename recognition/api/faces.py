"""Faces: list and retrieve; say who a face is, "not this person", "not a face"; crops; "find
this face everywhere"."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, prefetch_related_objects
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.ownership import OwnedQuerysetMixin
from recognition import matching, search
from recognition import serializers as bodies
from recognition.api.common import JPEG, SIMILAR_LIMIT, SIMILAR_MAX_LIMIT, browser_cached
from recognition.models import Decider, Face, FaceRejection
from recognition.people import corrections


class FaceFilter(django_filters.FilterSet):
    asset = django_filters.NumberFilter(field_name="asset_id")
    subject = django_filters.NumberFilter(field_name="subject_id")
    unknown = django_filters.BooleanFilter(field_name="subject", lookup_expr="isnull",
                                           label="true: faces that belong to nobody yet.")
    is_example = django_filters.BooleanFilter(label="true: faces used for matching.")
    decided_by = django_filters.ChoiceFilter(choices=Decider.choices, label="Who decided: auto or human.")
    dismissed = django_filters.BooleanFilter(
        label='true: the faces dismissed as "not a face" (left out of the list otherwise).')

    class Meta:
        model = Face
        fields = ["asset", "subject", "unknown", "is_example", "decided_by", "dismissed"]


DECISIONS_DOC = (
    " Every human decision is kept: `decided_by` says who decided (`auto`: matching or clustering; "
    "`human`), and re-runs never undo it."
)


@extend_schema_view(
    list=extend_schema(tags=["faces"], summary="Detected faces",
                       description='Faces dismissed as "not a face" are left out unless `dismissed=true`.'),
    retrieve=extend_schema(tags=["faces"], summary="One face"),
)
class FaceViewSet(OwnedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Face.objects.select_related("subject").prefetch_related(
        Prefetch("rejections", queryset=FaceRejection.objects.only("face_id", "subject_id")))
    serializer_class = bodies.FaceSerializer
    filterset_class = FaceFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list" and "dismissed" not in self.request.query_params:
            queryset = queryset.filter(dismissed=False)
        return queryset

    def _answer(self, face: Face) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=face.pk)).data)

    @extend_schema(
        tags=["faces"],
        summary="Say who the face is",
        description="`subject`: one of your people: the face becomes a confirmed face of that person and, when it "
                    "is clear enough (`quality` at least `SIGHTLINE_ENROL_MIN_QUALITY`), is used for matching from "
                    "then on (`used_for_matching`; `matching_note` says why not). `null`: you do not know who it is; "
                    "it stays unknown (and gets a \"not this person\" for the person it had)." + DECISIONS_DOC,
        request=bodies.FACE_SUBJECT_BODY,
        responses={200: bodies.FaceSerializer, 400: bodies.ErrorSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        face = self.get_object()
        serializer = bodies.FaceSubjectSerializer(face, data=request.data)
        serializer.is_valid(raise_exception=True)
        corrections.say_who(face, serializer.validated_data["subject"])
        return self._answer(face)

    @extend_schema(
        tags=["faces"],
        summary="Not this person",
        description="Takes the face away from a person (`subject`, default: its current one) and keeps that as "
                    "negative feedback: nothing automatic gives the face to that person again, re-runs included. "
                    "The face falls to its next candidate, to clustering, or to unknown." + DECISIONS_DOC,
        request=bodies.FaceRejectSerializer,
        responses={200: bodies.FaceSerializer, 400: bodies.ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        face = self.get_object()
        corrections.reject_face(face, bodies.FaceRejectSerializer.person_named(request.data, face.owner_id))
        return self._answer(face)

    @extend_schema(
        tags=["faces"],
        summary="Not a face",
        description="Dismisses a false detection: hidden from lists and pages, never matched or clustered, and "
                    "still dismissed after a re-run. `restore` undoes it." + DECISIONS_DOC,
        request=None,
        responses={200: bodies.FaceSerializer},
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return self._answer(corrections.dismiss_face(self.get_object()))

    @extend_schema(
        tags=["faces"],
        summary='Undo "not a face"',
        description="The face is shown again, and matched and clustered like a new one.",
        request=None,
        responses={200: bodies.FaceSerializer},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        return self._answer(corrections.restore_face(self.get_object()))

    @extend_schema(
        tags=["faces"],
        summary="The face as a JPEG crop",
        description="The face with a margin, as the pipeline stored it when it found the face (404 "
                    "`face_unavailable` for a face found before crops were stored: re-run its photo).",
        responses=JPEG,
    )
    @action(detail=True, methods=["get"])
    def crop(self, request, pk=None):
        face = self.get_object()
        if not face.crop:
            raise matching.FaceUnavailable("No crop is stored for this face yet: re-run its photo or video.")
        return browser_cached(FileResponse(face.crop.open("rb"), content_type="image/jpeg"))

    @extend_schema(
        tags=["faces"],
        summary="Find this face everywhere",
        description="Your other faces nearest to this one (Euclidean distance of the embeddings, nearest "
                    "first; under 0.6 is usually the same person).",
        parameters=[
            # The bounds SimilarParams checks, so clients see them.
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": SIMILAR_MAX_LIMIT},
                             description=f"How many (default {SIMILAR_LIMIT}, at most {SIMILAR_MAX_LIMIT})."),
            OpenApiParameter("max_distance", {"type": "number", "minimum": 0.0},
                             description="Leave out faces further than this."),
        ],
        responses={200: bodies.SimilarFaceSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def similar(self, request, pk=None):
        face = self.get_object()
        params = SimilarParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        faces = search.similar_faces(face.owner_id, face.embedding, limit=params.validated_data["limit"],
                                     max_distance=params.validated_data.get("max_distance"), exclude_id=face.pk)
        prefetch_related_objects(faces, "subject", "rejections")
        return Response(bodies.SimilarFaceSerializer(faces, many=True, context=self.get_serializer_context()).data)


class SimilarParams(serializers.Serializer):
    limit = serializers.IntegerField(default=SIMILAR_LIMIT, min_value=1, max_value=SIMILAR_MAX_LIMIT)
    max_distance = serializers.FloatField(required=False, min_value=0.0)
