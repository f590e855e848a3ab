"""Recognition API: assets (uploads), jobs, faces, subjects and their examples, recognize, verify.

Thin views: querysets are owner-scoped in ``get_queryset`` (other users' rows answer 404), the
work happens in services, enrollment and matching, and their refusals (``config.refusals``)
become the API's JSON error body in the one exception handler, ``config.api``.
"""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db import IntegrityError
from django.db.models import Count, Exists, OuterRef, Q, prefetch_related_objects
from django.http import FileResponse, HttpResponse
from django.utils.cache import patch_cache_control
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.ownership import IsOwnerOrStaff, OwnedQuerysetMixin, owned_by
from config.refusals import NotFound
from media.models import Asset
from media.validation import RejectedUpload, probe_file
from recognition import enrollment, jobs, matching, search, services
from recognition import serializers as bodies
from recognition.models import Face, Job, Stage, Subject, with_latest_job

JOB_EVENTS_DOC = """

**Live progress over WebSocket.** Connect to `ws/jobs/` (every job of yours; every user's for
staff) or `ws/jobs/<id>/` (one job; closed with code 4404 when it is not yours). Authenticate
with the session cookie or with `?token=<JWT access token>`. The current state of the job(s)
is sent first, then one JSON message per change:

    {"type": "job.stage", "job": 12, "asset": 7, "stage": "detecting", "progress": 10,
     "at": "2026-11-22T10:00:00.123456+00:00", "error": null}

`stage` goes `uploading → queued → detecting → enhancing → recognizing → completed`, or ends
`failed` with `error` set: `uploading` while the file is received and stored, `queued` while it
waits for a worker (a re-run starts there), then the worker's stages. Send `{"type": "state"}` to get the current state again."""

BINARY_FILE = {(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: bodies.ErrorSerializer}
JPEG = {(200, "image/jpeg"): OpenApiTypes.BINARY, 404: bodies.ErrorSerializer}
IMAGE_MAX_AGE_SECONDS = 3600
SIMILAR_LIMIT = 20
SIMILAR_MAX_LIMIT = 100


def browser_cached(response):
    """Let the user's browser (never a shared cache) keep an image for an hour: an asset's file
    and thumbnail never change, a face's crop hardly does, and the pages show dozens of crops,
    each cut from a decoded photo or video frame."""
    patch_cache_control(response, private=True, max_age=IMAGE_MAX_AGE_SECONDS)
    return response


def analyze_on_realtime_worker(asset: Asset) -> dict:
    return services.run_realtime(jobs.analyze_stored_photo, asset.pk)


def analyze_photo_upload(upload, label: str = "The photo") -> dict:
    """Validate one photo in this process (cheap, clear 4xx), then find its faces on the
    realtime worker. Raises RejectedUpload or the realtime errors."""
    limit = settings.SIGHTLINE_REALTIME_MAX_BYTES
    if upload.size > limit:
        raise RejectedUpload(f"{label} is {upload.size} bytes; the largest accepted here is {limit} bytes.",
                             "too_large", 413)
    if probe_file(upload, upload.size).kind != Asset.Kind.IMAGE:
        raise RejectedUpload(f"{label} must be an image, not a video.", "not_an_image", 415)
    upload.seek(0)
    analysis = services.run_realtime(jobs.analyze_photo_bytes, upload.read())
    if "rejected" in analysis:
        rejected = analysis["rejected"]
        raise RejectedUpload(rejected["message"], rejected["code"], rejected["status"])
    return analysis


# --- assets --------------------------------------------------------------------------------


class AssetFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Asset.Kind.choices)
    created_after = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte",
                                              label="Created on or after this date (YYYY-MM-DD).")
    created_before = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte",
                                               label="Created on or before this date (YYYY-MM-DD).")
    subject = django_filters.NumberFilter(method="filter_subject", label="Assets with a face of this subject.")

    class Meta:
        model = Asset
        fields = ["kind", "created_after", "created_before", "subject"]

    def filter_subject(self, queryset, name, value):
        return queryset.filter(Exists(Face.objects.filter(asset=OuterRef("pk"), subject_id=value)))


@extend_schema_view(
    list=extend_schema(tags=["assets"], summary="Your uploaded photos and videos"),
    retrieve=extend_schema(tags=["assets"], summary="One asset with its latest job, face count and tags"),
    destroy=extend_schema(tags=["assets"], summary="Delete an asset with its files, faces, tags and jobs"),
)
class AssetViewSet(OwnedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = Asset.objects.all()
    serializer_class = bodies.AssetSerializer
    parser_classes = [MultiPartParser, FormParser]
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = AssetFilter
    ordering_fields = ["created_at", "size_bytes", "original_name", "kind"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("list", "retrieve", "create"):
            queryset = with_latest_job(queryset).prefetch_related("tags")
        return queryset

    @extend_schema(
        tags=["assets"],
        summary="Upload a photo or a video",
        description="The file is validated by its content and stored; a new file starts a processing job "
                    "(202). The same bytes uploaded again answer 200 with the asset you already have and its "
                    "latest job." + JOB_EVENTS_DOC,
        request={"multipart/form-data": bodies.UploadSerializer},
        responses={
            202: bodies.UploadResponseSerializer,
            200: bodies.UploadResponseSerializer,
            400: bodies.ErrorSerializer,
            413: bodies.ErrorSerializer,
            415: bodies.ErrorSerializer,
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = bodies.UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        outcome = services.upload(request.user, upload, upload.name)
        asset = self.get_queryset().get(pk=outcome.asset.pk)
        context = self.get_serializer_context()
        job = bodies.JobSerializer(outcome.job, context=context).data if outcome.job else None
        body = {"asset": bodies.AssetSerializer(asset, context=context).data, "job": job,
                "job_url": job["url"] if job else None}
        return Response(body, status=status.HTTP_202_ACCEPTED if outcome.created else status.HTTP_200_OK)

    @extend_schema(tags=["assets"], summary="The stored original file", responses=BINARY_FILE)
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        asset = self.get_object()
        return browser_cached(FileResponse(asset.file.storage.open(asset.file.name, "rb"),
                                           filename=asset.original_name, content_type=asset.content_type))

    @extend_schema(tags=["assets"], summary="The asset's JPEG thumbnail", responses=JPEG)
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        asset = self.get_object()
        if not asset.thumbnail:
            raise NotFound("This asset has no thumbnail.")
        stem = asset.original_name.rsplit(".", 1)[0]
        return browser_cached(FileResponse(asset.thumbnail.storage.open(asset.thumbnail.name, "rb"),
                                           filename=f"{stem}-thumbnail.jpg", content_type="image/jpeg"))


# --- jobs ----------------------------------------------------------------------------------


class JobFilter(django_filters.FilterSet):
    stage = django_filters.ChoiceFilter(choices=Stage.choices)
    asset = django_filters.NumberFilter(field_name="asset_id")

    class Meta:
        model = Job
        fields = ["stage", "asset"]


@extend_schema_view(
    list=extend_schema(tags=["jobs"], summary="Your processing jobs",
                       description="Poll here, or stream." + JOB_EVENTS_DOC),
    retrieve=extend_schema(tags=["jobs"], summary="One job: stage, progress, timings, error",
                           description="Poll here, or stream." + JOB_EVENTS_DOC),
)
class JobViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.all()
    serializer_class = bodies.JobSerializer
    owner_field = "asset__owner"
    filterset_class = JobFilter

    @extend_schema(
        tags=["jobs"],
        summary="Process the job's asset again",
        description="Starts a new job (the old one stays as history). Refused with 409 while the asset "
                    "still has a job in progress." + JOB_EVENTS_DOC,
        request=None,
        responses={202: bodies.JobSerializer, 409: bodies.ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        new_job = services.rerun_asset(self.get_object().asset)
        return Response(bodies.JobSerializer(new_job, context=self.get_serializer_context()).data,
                        status=status.HTTP_202_ACCEPTED)


# --- faces ---------------------------------------------------------------------------------


class FaceFilter(django_filters.FilterSet):
    asset = django_filters.NumberFilter(field_name="asset_id")
    subject = django_filters.NumberFilter(field_name="subject_id")
    unknown = django_filters.BooleanFilter(field_name="subject", lookup_expr="isnull",
                                           label="true: faces nobody has been recognised in.")
    is_example = django_filters.BooleanFilter()

    class Meta:
        model = Face
        fields = ["asset", "subject", "unknown", "is_example"]


@extend_schema_view(
    list=extend_schema(tags=["faces"], summary="Detected faces"),
    retrieve=extend_schema(tags=["faces"], summary="One face"),
)
class FaceViewSet(OwnedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                  viewsets.GenericViewSet):
    queryset = Face.objects.select_related("subject")
    serializer_class = bodies.FaceSerializer
    filterset_class = FaceFilter

    @extend_schema(
        tags=["faces"],
        summary="Say who the face is",
        description="`subject`: one of your subjects, or null for unknown. An example face moved to another "
                    "subject teaches that subject instead; made unknown, it stops being an example.",
        request=bodies.FaceSubjectSerializer,
        responses={200: bodies.FaceSerializer, 400: bodies.ErrorSerializer},
    )
    def partial_update(self, request, *args, **kwargs):
        face = self.get_object()
        serializer = bodies.FaceSubjectSerializer(face, data=request.data)
        serializer.is_valid(raise_exception=True)
        enrollment.assign_subject(face, serializer.validated_data["subject"])
        return Response(self.get_serializer(face).data)

    @extend_schema(
        tags=["faces"],
        summary="The face as a JPEG crop",
        description="Cropped with a margin from the photo, or from the sampled video frame the face was found in.",
        responses=JPEG,
    )
    @action(detail=True, methods=["get"])
    def crop(self, request, pk=None):
        face = self.get_object()
        return browser_cached(HttpResponse(matching.face_crop_jpeg(face), content_type="image/jpeg"))

    @extend_schema(
        tags=["faces"],
        summary="Find this face everywhere",
        description="Your other faces nearest to this one (Euclidean distance of the embeddings, nearest "
                    "first; under 0.6 is usually the same person).",
        parameters=[
            OpenApiParameter("limit", int, description=f"How many (default {SIMILAR_LIMIT}, "
                                                       f"at most {SIMILAR_MAX_LIMIT})."),
            OpenApiParameter("max_distance", float, description="Leave out faces further than this."),
        ],
        responses={200: bodies.SimilarFaceSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def similar(self, request, pk=None):
        face = self.get_object()
        params = SimilarParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        limit = params.validated_data["limit"]
        nearest = search.similar_faces(face.owner_id, face.embedding, limit=limit + 1,
                                       max_distance=params.validated_data.get("max_distance"))
        faces = [other for other in nearest if other.pk != face.pk][:limit]
        prefetch_related_objects(faces, "subject")
        return Response(bodies.SimilarFaceSerializer(faces, many=True, context=self.get_serializer_context()).data)


class SimilarParams(serializers.Serializer):
    limit = serializers.IntegerField(default=SIMILAR_LIMIT, min_value=1, max_value=SIMILAR_MAX_LIMIT)
    max_distance = serializers.FloatField(required=False, min_value=0.0)


# --- subjects and examples -----------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["subjects"], summary="Your known people"),
    retrieve=extend_schema(tags=["subjects"]),
    create=extend_schema(tags=["subjects"], summary="Add a person (names are unique per user, ignoring case)"),
    update=extend_schema(tags=["subjects"]),
    partial_update=extend_schema(tags=["subjects"]),
    destroy=extend_schema(tags=["subjects"], summary="Delete a person; their faces stay, as unknown"),
)
class SubjectViewSet(OwnedQuerysetMixin, viewsets.ModelViewSet):
    queryset = Subject.objects.all()
    serializer_class = bodies.SubjectSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filter_backends = [OrderingFilter]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        # Explicit order: Meta.ordering does not apply to aggregating (GROUP BY) queries.
        return super().get_queryset().annotate(
            face_count=Count("faces"), example_count=Count("faces", filter=Q(faces__is_example=True))
        ).order_by("name", "id")

    def perform_create(self, serializer):
        try:
            super().perform_create(serializer)
        except IntegrityError:  # a concurrent request created the same name first
            raise serializers.ValidationError({"name": ["You already have a subject with this name."]}) from None

    def perform_update(self, serializer):
        try:
            serializer.save()
        except IntegrityError:
            raise serializers.ValidationError({"name": ["You already have a subject with this name."]}) from None

    def perform_destroy(self, instance):
        enrollment.delete_subject(instance)

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
            503: bodies.ErrorSerializer,
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
            face = enrollment.enroll_photo(subject, upload, upload.name, analyze_on_realtime_worker,
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


# --- recognize and verify ------------------------------------------------------------------


REALTIME_ERRORS = {
    400: bodies.ErrorSerializer,
    413: bodies.ErrorSerializer,
    415: bodies.ErrorSerializer,
    502: bodies.ErrorSerializer,
    503: OpenApiResponse(bodies.ErrorSerializer, description="No recognition worker answered in time."),
}


@extend_schema(
    tags=["recognition"],
    summary="Who is in this photo? (1:N, nothing stored)",
    description="Finds every face and matches it against your enrolled subjects: the match within "
                "`threshold` (or null for unknown) and the top `limit` candidates with distances. The photo "
                "is analysed by a recognition worker while the request waits; nothing is stored.",
    request={"multipart/form-data": bodies.RecognizeSerializer},
    responses={200: bodies.RecognitionSerializer, **REALTIME_ERRORS},
)
class RecognizeView(GenericAPIView):
    serializer_class = bodies.RecognizeSerializer
    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsOwnerOrStaff]  # no object here: any signed-in user, for their own subjects

    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        analysis = analyze_photo_upload(data["file"])
        return Response(matching.recognition_result(request.user.pk, analysis, data["limit"], data.get("threshold")))


@extend_schema(
    tags=["recognition"],
    summary="Are these the same person? (1:1)",
    description="Two photos (`file1`, `file2`: the biggest face of each, analysed by a recognition worker) or "
                "two of your face ids (`face1`, `face2`: compared from their stored embeddings).",
    request={"multipart/form-data": bodies.VerifySerializer, "application/json": bodies.VerifySerializer},
    responses={200: bodies.VerificationSerializer, 404: bodies.ErrorSerializer, **REALTIME_ERRORS},
)
class VerifyView(GenericAPIView):
    serializer_class = bodies.VerifySerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    permission_classes = [IsOwnerOrStaff]  # no object here: any signed-in user, for their own subjects

    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "face1" in data:
            faces = owned_by(Face.objects.all(), request.user).in_bulk([data["face1"], data["face2"]])
            for field in ("face1", "face2"):
                if data[field] not in faces:
                    raise NotFound(f"{field}: you have no face with id {data[field]}.")
            first, second = faces[data["face1"]], faces[data["face2"]]
            result = matching.verification_result(
                first.embedding, second.embedding,
                [matching.stored_face_summary(first), matching.stored_face_summary(second)], data.get("threshold"),
            )
            return Response(result)
        biggest = []
        for field in ("file1", "file2"):
            analysis = analyze_photo_upload(data[field], label=field)
            if not analysis["faces"]:
                raise enrollment.EnrollmentError(f"No face was found in {field}.", "no_face")
            biggest.append(analysis["faces"][0])
        result = matching.verification_result(
            biggest[0]["embedding"], biggest[1]["embedding"], [matching.face_summary(f) for f in biggest],
            data.get("threshold"),
        )
        return Response(result)
