"""People (subjects): named ones and clusters of unknown faces; naming, renaming, hiding,
merging, deleting and erasing them; their example faces."""

from __future__ import annotations

import dataclasses

import django_filters
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.ownership import OwnedQuerysetMixin, owned_by
from config.refusals import NotFound
from recognition import enrollment, services
from recognition import serializers as bodies
from recognition.models import Face, Subject
from recognition.people import corrections




class SubjectFilter(django_filters.FilterSet):
    named = django_filters.BooleanFilter(method="filter_named",
                                         label="true: people with a name; false: clusters of unknown faces.")
    hidden = django_filters.BooleanFilter(label="true: people hidden from the gallery; false: the others.")

    class Meta:
        model = Subject
        fields = ["named", "hidden"]

    def filter_named(self, queryset, name, value):
        return queryset.named() if value else queryset.unnamed()


@extend_schema_view(
    list=extend_schema(tags=["subjects"], summary="Your people, named ones first, then unknown clusters by size",
                       description="A person without a name (`is_named` false) is a cluster of similar unknown "
                                   "faces; naming it makes it a person like any other."),
    retrieve=extend_schema(tags=["subjects"], summary="One person"),
    destroy=extend_schema(tags=["subjects"], summary="Delete a person; their faces stay, as unknown"),
)
class SubjectViewSet(OwnedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = Subject.objects.all()
    serializer_class = bodies.SubjectSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filterset_class = SubjectFilter

    def get_queryset(self):
        return super().get_queryset().with_counts().with_cover().gallery_order()

    def _answer(self, subject: Subject, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=subject.pk)).data, status=status_code)

    @extend_schema(
        tags=["subjects"],
        summary="Add a person",
        description="Names are unique per user, ignoring case (409 `name_taken` names the existing person). "
                    "With `face`, that face is named as the new person at once.",
        request=bodies.SubjectCreateSerializer,
        responses={201: bodies.SubjectSerializer, 400: bodies.ErrorSerializer,
                   404: OpenApiResponse(bodies.ErrorSerializer, description="`face` is not one of yours."),
                   409: bodies.ErrorSerializer},
    )
    def create(self, request, *args, **kwargs):
        body = bodies.SubjectCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        face = None
        if "face" in body.validated_data:
            face = owned_by(Face.objects.all(), request.user).filter(pk=body.validated_data["face"]).first()
            if face is None:
                raise NotFound(f"You have no face with id {body.validated_data['face']}.")
        subject = corrections.create_person(request.user, body.validated_data["name"], face=face,
                                            notes=body.validated_data["notes"])
        return self._answer(subject, status.HTTP_201_CREATED)

    @extend_schema(
        tags=["subjects"],
        summary="Rename, hide or annotate a person",
        description="Naming a person without a name (a cluster) is saying its faces are that person: they become "
                    "confirmed, and the clear ones are used for matching. A name another of your people has is "
                    "refused with 409 `name_taken` (merge them instead).",
        request=bodies.SubjectUpdateSerializer,
        responses={200: bodies.SubjectSerializer, 400: bodies.ErrorSerializer, 409: bodies.ErrorSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        subject = self.get_object()
        body = bodies.SubjectUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with transaction.atomic():
            if "name" in data:
                corrections.rename_person(subject, data["name"])
            if "hidden" in data:
                corrections.set_hidden(subject, data["hidden"])
            if "notes" in data:
                subject.notes = data["notes"]
                subject.save(update_fields=["notes"])
        return self._answer(subject)

    def perform_destroy(self, instance):
        corrections.delete_person(instance)

    @extend_schema(
        tags=["subjects"],
        summary="Merge other people into this one",
        description="Their faces, examples and \"not this person\" feedback move here and they are deleted. This "
                    "person keeps its name (or takes the first merged one's, if it has none). A face that had said "
                    "\"not this person\" to this one stays unknown.",
        request=bodies.MergeSerializer,
        responses={200: bodies.MergeResultSerializer, 400: bodies.ErrorSerializer, 404: bodies.ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        target = self.get_object()
        body = bodies.MergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = set(body.validated_data["subjects"])
        sources = list(Subject.objects.filter(owner_id=target.owner_id, pk__in=wanted))
        if missing := wanted - {s.pk for s in sources}:
            raise NotFound(f"You have no person with id {min(missing)}.")
        result = corrections.merge_people(target, sources)
        result = dataclasses.replace(result, target=self.get_queryset().get(pk=target.pk))
        return Response(bodies.MergeResultSerializer(result, context=self.get_serializer_context()).data)

    @extend_schema(
        tags=["subjects"],
        summary="What erasing this person would remove",
        responses={200: bodies.ErasureSerializer},
    )
    @action(detail=True, methods=["get"])
    def erasure(self, request, pk=None):
        return Response(bodies.ErasureSerializer(corrections.erasure_preview(self.get_object())).data)

    @extend_schema(
        tags=["subjects"],
        summary="Erase this person (biometric data erasure)",
        description="Deletes every face of the person with its embedding, and its examples; the photos stay, and "
                    "re-running them does not store these faces again. Needs `confirm: true`; cannot be undone. "
                    "Answers with what was erased.",
        request=bodies.EraseSerializer,
        responses={200: bodies.ErasureSerializer, 400: bodies.ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def erase(self, request, pk=None):
        subject = self.get_object()
        bodies.EraseSerializer(data=request.data).is_valid(raise_exception=True)
        return Response(bodies.ErasureSerializer(corrections.erase_person(subject)).data)

    @extend_schema(methods=["GET"], tags=["subjects"], summary="The subject's example faces",
                   responses=bodies.FaceSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        tags=["subjects"],
        summary="Enrol an example face",
        description="Either upload a photo (`file`) showing exactly one clear face (faces under "
                    "`SIGHTLINE_ENROL_MIN_QUALITY`, 0.4 by default, are not counted), or name which face with "
                    "`face_index` (biggest first; a 400 lists the faces found when there is no single one), "
                    "or send `face_id`, one of your detected faces. A new photo is stored and processed like "
                    "an upload; a photo stored only for a refused enrolment is deleted again.",
        request={"multipart/form-data": bodies.ExampleCreateSerializer,
                 "application/json": bodies.ExampleCreateSerializer},
        responses={
            201: bodies.FaceSerializer,
            400: bodies.EnrollmentErrorSerializer,
            413: bodies.ErrorSerializer,
            415: bodies.ErrorSerializer,
            502: OpenApiResponse(bodies.ErrorSerializer, description="The recognition worker failed on the photo."),
            503: OpenApiResponse(bodies.ErrorSerializer, description="No recognition worker answered in time."),
        },
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def examples(self, request, pk=None):
        subject = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(subject.faces.examples().select_related("subject"))
            return self.get_paginated_response(
                bodies.FaceSerializer(page, many=True, context=self.get_serializer_context()).data
            )
        serializer = bodies.ExampleCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "face_id" in data:
            face = owned_by(Face.objects.all(), request.user).filter(pk=data["face_id"]).first()
            if face is None:
                raise serializers.ValidationError({"face_id": [f"You have no face with id {data['face_id']}."]})
            enrollment.enroll_face(subject, face)
        else:
            upload = data["file"]
            face = enrollment.enroll_photo(subject, upload, upload.name, services.analyze_on_realtime_worker,
                                           face_index=data.get("face_index"))
        face = Face.objects.select_related("subject").get(pk=face.pk)
        return Response(bodies.FaceSerializer(face, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["subjects"],
        summary="Un-enrol an example face",
        description="The face stops being an example; it keeps its subject (it still shows that person). "
                    "To make it unknown, PATCH the face with `subject: null`.",
        request=None,
        responses={204: None, 404: bodies.ErrorSerializer},
    )
    @action(detail=True, methods=["delete"], url_path=r"examples/(?P<face_id>[0-9]+)", filter_backends=[])
    def remove_example(self, request, pk=None, face_id=None):
        subject = self.get_object()
        face = subject.faces.examples().filter(pk=face_id).first()
        if face is None:
            raise NotFound(f"Face {face_id} is not an example of this subject.")
        enrollment.unenroll_face(face)
        return Response(status=status.HTTP_204_NO_CONTENT)
