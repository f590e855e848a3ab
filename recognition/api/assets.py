"""Assets: upload (202 + a job), list, retrieve, delete, the original file and its thumbnail."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef
from django.http import FileResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.ownership import OwnedQuerysetMixin
from config.refusals import NotFound
from config.throttling import UploadRateThrottle, UploadsThrottled
from media.models import Asset
from recognition import search_images, services
from recognition import serializers as bodies
from recognition.models import Face, as_new_with_latest_job, with_latest_job

from recognition.api.common import (
    BINARY_FILE, JOB_EVENTS_DOC, JPEG, SIMILAR_LIMIT, SIMILAR_MAX_LIMIT, browser_cached,
    ranged_file_response,
)



class AssetFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(field_name="original_name", lookup_expr="icontains", max_length=255,
                                     label="File names containing this text, in any case.")
    kind = django_filters.ChoiceFilter(choices=Asset.Kind.choices)
    created_after = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte",
                                              label="Created on or after this date (YYYY-MM-DD).")
    created_before = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte",
                                               label="Created on or before this date (YYYY-MM-DD).")
    subject = django_filters.NumberFilter(method="filter_subject", label="Assets with a face of this subject.")

    class Meta:
        model = Asset
        fields = ["name", "kind", "created_after", "created_before", "subject"]

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

    def get_throttles(self):
        """Uploads also count against the user's upload rate, shared with the dashboard."""
        throttles = super().get_throttles()
        return [*throttles, UploadRateThrottle()] if self.action == "create" else throttles

    def throttled(self, request, wait):
        if self.action == "create":
            raise UploadsThrottled(wait)
        super().throttled(request, wait)

    @extend_schema(
        tags=["assets"],
        summary="Upload a photo or a video",
        description="The file is validated by its content and stored; a new file starts a processing job "
                    "(202). The same bytes uploaded again answer 200 with the asset you already have and its "
                    "latest job. Uploads per user are limited (`SIGHTLINE_UPLOAD_RATE`, 120 a minute by default, "
                    "shared with the dashboard): over it, 429 with `Retry-After`." + JOB_EVENTS_DOC,
        request={"multipart/form-data": bodies.UploadSerializer},
        responses={
            202: bodies.UploadResponseSerializer,
            200: bodies.UploadResponseSerializer,
            400: bodies.ErrorSerializer,
            413: bodies.ErrorSerializer,
            415: bodies.ErrorSerializer,
            429: bodies.ErrorSerializer,
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = bodies.UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        outcome = services.upload(request.user, upload, upload.name)
        if outcome.created:
            asset = as_new_with_latest_job(outcome.asset, outcome.job)
        else:  # the asset you already had: its faces, tags and latest job as they are now
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
        return browser_cached(ranged_file_response(request, asset.file.storage.open(asset.file.name, "rb"),
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

    @extend_schema(
        tags=["assets"],
        summary="Similar photos",
        description="Your other photos that look most like this one (the whole-image embedding, cosine distance, "
                    "nearest first). Near-duplicates are within `SIGHTLINE_DUPLICATE_DISTANCE` (default 0.05). "
                    "409 while the photo has not been processed, 400 for a video.",
        parameters=[
            # The bounds SimilarPhotoParams checks, so clients see them.
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": SIMILAR_MAX_LIMIT},
                             description=f"How many (default {SIMILAR_LIMIT}, at most {SIMILAR_MAX_LIMIT})."),
            OpenApiParameter("max_distance", {"type": "number", "minimum": 0.0, "maximum": 2.0},
                             description="Leave out photos further than this."),
        ],
        responses={200: bodies.SimilarAssetSerializer(many=True), 400: bodies.ErrorSerializer,
                   404: bodies.ErrorSerializer, 409: bodies.ErrorSerializer},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def similar(self, request, pk=None):
        asset = self.get_object()
        params = SimilarPhotoParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        photos = search_images.similar_photos(asset, limit=params.validated_data["limit"],
                                              max_distance=params.validated_data.get("max_distance"))
        return Response(bodies.SimilarAssetSerializer(photos, many=True, context=self.get_serializer_context()).data)


class SimilarPhotoParams(serializers.Serializer):
    limit = serializers.IntegerField(default=SIMILAR_LIMIT, min_value=1, max_value=SIMILAR_MAX_LIMIT)
    max_distance = serializers.FloatField(required=False, min_value=0.0, max_value=2.0)
