"""What the recognition API reads and writes. Output serializers expect the viewsets' querysets
(annotated counts, prefetched jobs and tags), so listing never queries per row."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from media.models import Asset
from recognition.models import Face, ImageTag, Job, Subject, latest_job

MAX_CANDIDATES = 20
MAX_THRESHOLD = 2.0  # dlib descriptors are unit-ish vectors: no two are further apart than this


def absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


# --- jobs ----------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ("id", "url", "asset", "stage", "progress", "timings", "error", "error_code", "attempts",
                  "model_version", "created_at", "updated_at", "finished_at")
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job) -> str:
        return absolute(self.context.get("request"), reverse("job-detail", args=[job.pk]))


class JobStateSerializer(serializers.ModelSerializer):
    """An asset's latest job, in short."""

    class Meta:
        model = Job
        fields = ("id", "stage", "progress", "error", "error_code", "finished_at")
        read_only_fields = fields


# --- assets --------------------------------------------------------------------------------


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImageTag
        fields = ("label", "probability")


class AssetSerializer(serializers.ModelSerializer):
    latest_job = serializers.SerializerMethodField()
    face_count = serializers.IntegerField(read_only=True)
    tags = TagSerializer(many=True, read_only=True)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = ("id", "kind", "original_name", "content_type", "size_bytes", "sha256", "width", "height",
                  "duration_seconds", "fps", "frame_count", "created_at", "face_count", "latest_job", "tags",
                  "file_url", "thumbnail_url")
        read_only_fields = fields

    @extend_schema_field(JobStateSerializer(allow_null=True))
    def get_latest_job(self, asset):
        latest = latest_job(asset)  # prefetched by the viewset (``with_latest_job``)
        return JobStateSerializer(latest).data if latest else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_file_url(self, asset) -> str:
        return absolute(self.context.get("request"), reverse("asset-file", args=[asset.pk]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, asset) -> str | None:
        if not asset.thumbnail:
            return None
        return absolute(self.context.get("request"), reverse("asset-thumbnail", args=[asset.pk]))


# Empty files pass here so media's validation refuses them with its own code ("empty").
class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, help_text="An image or a video; its type is detected from the content."
    )


class UploadResponseSerializer(serializers.Serializer):
    asset = AssetSerializer()
    job = JobSerializer(allow_null=True)
    job_url = serializers.URLField(allow_null=True)


# --- subjects and faces --------------------------------------------------------------------


class SubjectRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ("id", "name")
        read_only_fields = fields


class SubjectSerializer(serializers.ModelSerializer):
    face_count = serializers.IntegerField(read_only=True, default=0)
    example_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Subject
        fields = ("id", "name", "notes", "created_at", "face_count", "example_count")
        read_only_fields = ("id", "created_at", "face_count", "example_count")

    def validate_name(self, value):
        name = value.strip()
        if not name:
            raise serializers.ValidationError("A name is required.")
        owner = self.instance.owner if self.instance else self.context["request"].user
        taken = Subject.objects.filter(owner=owner, name__iexact=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f'You already have a subject named "{name}" (names ignore case).')
        return name


class FaceSerializer(serializers.ModelSerializer):
    subject = SubjectRefSerializer(read_only=True, allow_null=True)
    crop_url = serializers.SerializerMethodField()

    class Meta:
        model = Face
        fields = ("id", "asset", "job", "frame_index", "timestamp", "box", "landmarks", "score", "quality",
                  "model_version", "subject", "match_distance", "is_example", "created_at", "crop_url")
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_crop_url(self, face) -> str:
        return absolute(self.context.get("request"), reverse("face-crop", args=[face.pk]))


class SimilarFaceSerializer(FaceSerializer):
    distance = serializers.FloatField(read_only=True)

    class Meta(FaceSerializer.Meta):
        fields = (*FaceSerializer.Meta.fields, "distance")
        read_only_fields = fields


class FaceSubjectSerializer(serializers.Serializer):
    """PATCH a face: who it is (a subject of the face's owner), or null for unknown."""

    subject = serializers.PrimaryKeyRelatedField(
        queryset=Subject.objects.none(), allow_null=True,
        error_messages={"does_not_exist": "You have no subject with id {pk_value}."},
    )

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["subject"].queryset = Subject.objects.filter(owner_id=self.instance.owner_id)
        return fields


class ExampleCreateSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, required=False, help_text="A photo to enrol one face from.")
    face_index = serializers.IntegerField(
        required=False, min_value=0,
        help_text="Which face of the photo (biggest first, from 0) when it shows several.",
    )
    face_id = serializers.IntegerField(required=False, help_text="One of your detected faces to enrol instead.")

    def validate(self, attrs):
        if ("file" in attrs) == ("face_id" in attrs):
            raise serializers.ValidationError("Send either a photo (file) or a face id (face_id), not both.")
        if "face_index" in attrs and "file" not in attrs:
            raise serializers.ValidationError("face_index chooses a face of an uploaded photo; send the file too.")
        return attrs


class FaceChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)
    score = serializers.FloatField()
    quality = serializers.FloatField(help_text="0 to 1: size, sharpness, exposure and frontality of the face.")


class EnrollmentErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField()
    faces = FaceChoiceSerializer(many=True, help_text="The faces found, for choosing one with face_index.")


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False)


# --- recognize and verify ------------------------------------------------------------------


class RecognizeSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="One photo (JPEG, PNG, WebP, GIF, BMP or TIFF).")
    limit = serializers.IntegerField(default=3, min_value=1, max_value=MAX_CANDIDATES,
                                     help_text="Candidate subjects per face (top-k).")
    threshold = serializers.FloatField(
        required=False, min_value=0.0, max_value=MAX_THRESHOLD,
        help_text=f"Largest distance that counts as a match (default {settings.SIGHTLINE_MATCH_THRESHOLD}).",
    )


class MatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    distance = serializers.FloatField()


class CandidateSerializer(serializers.Serializer):
    subject = SubjectRefSerializer()
    distance = serializers.FloatField()
    votes = serializers.IntegerField(help_text="How many of the nearest example faces are this subject's.")


class FoundFaceSerializer(serializers.Serializer):
    box = serializers.ListField(child=serializers.FloatField(), help_text="[x1, y1, x2, y2] in pixels.")
    landmarks = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                      help_text="Eyes, nose, mouth corners: [[x, y] × 5].")
    score = serializers.FloatField()
    quality = serializers.FloatField()


class RecognizedFaceSerializer(FoundFaceSerializer):
    subject = MatchSerializer(allow_null=True, help_text="The match, or null for an unknown face.")
    candidates = CandidateSerializer(many=True)


class RecognitionSerializer(serializers.Serializer):
    faces = RecognizedFaceSerializer(many=True)
    threshold = serializers.FloatField()
    model_version = serializers.CharField()


class VerifySerializer(serializers.Serializer):
    file1 = serializers.FileField(allow_empty_file=True, required=False,
                                  help_text="First photo (its biggest face is used).")
    file2 = serializers.FileField(allow_empty_file=True, required=False,
                                  help_text="Second photo (its biggest face is used).")
    face1 = serializers.IntegerField(required=False, help_text="Or: one of your face ids.")
    face2 = serializers.IntegerField(required=False, help_text="Or: another of your face ids.")
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=MAX_THRESHOLD)

    def validate(self, attrs):
        photos = "file1" in attrs and "file2" in attrs
        faces = "face1" in attrs and "face2" in attrs
        if photos == faces:
            raise serializers.ValidationError("Send either two photos (file1, file2) or two face ids (face1, face2).")
        return attrs


class VerifiedFaceSerializer(FoundFaceSerializer):
    face = serializers.IntegerField(required=False, help_text="The face id, when verifying stored faces.")
    asset = serializers.IntegerField(required=False)


class VerificationSerializer(serializers.Serializer):
    distance = serializers.FloatField(help_text="Euclidean distance between the two face embeddings.")
    same_person = serializers.BooleanField()
    threshold = serializers.FloatField()
    faces = VerifiedFaceSerializer(many=True)
