"""What the recognition API reads and writes. Output serializers expect the viewsets' querysets
(annotated counts, prefetched jobs and tags), so listing never queries per row."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import ModelSerializer
from config.refusals import NotFound
from media.models import Asset
from recognition.models import Appearance, Decider, Face, ImageTag, Job, Subject, latest_job

# For method fields that answer null when there is nothing (OpenApiTypes.URI alone says never null).
NULLABLE_URI = serializers.URLField(allow_null=True)
NULLABLE_STR = serializers.CharField(allow_null=True)

MAX_CANDIDATES = 20
MAX_THRESHOLD = 2.0  # dlib descriptors are unit-ish vectors: no two are further apart than this


def absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


def crop_url(request, face_id: int | None) -> str | None:
    return absolute(request, reverse("face-crop", args=[face_id])) if face_id else None


# --- jobs ----------------------------------------------------------------------------------


class JobSerializer(ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ("id", "url", "asset", "stage", "progress", "timings", "error", "error_code", "attempts",
                  "model_version", "created_at", "updated_at", "finished_at")
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job) -> str:
        return absolute(self.context.get("request"), reverse("job-detail", args=[job.pk]))


class JobStateSerializer(ModelSerializer):
    """An asset's latest job, in short."""

    class Meta:
        model = Job
        fields = ("id", "stage", "progress", "error", "error_code", "finished_at")
        read_only_fields = fields


# --- assets --------------------------------------------------------------------------------


class TagSerializer(ModelSerializer):
    class Meta:
        model = ImageTag
        fields = ("label", "probability")


class AssetSerializer(ModelSerializer):
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

    @extend_schema_field(NULLABLE_URI)
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


class SubjectRefSerializer(ModelSerializer):
    class Meta:
        model = Subject
        fields = ("id", "name", "is_named")
        read_only_fields = fields


class SubjectSerializer(ModelSerializer):
    """A person: named, or a cluster of unknown faces (``is_named`` false, ``name`` empty)."""

    face_count = serializers.IntegerField(read_only=True, default=0)
    example_count = serializers.IntegerField(
        read_only=True, default=0, help_text="Faces used for matching: enrolled examples and clear named faces.")
    cover_face = serializers.IntegerField(source="cover_face_id", read_only=True, allow_null=True, default=None,
                                          help_text="The face that shows this person best.")
    cover_url = serializers.SerializerMethodField()

    class Meta:
        model = Subject
        fields = ("id", "name", "is_named", "display_name", "notes", "hidden", "created_at", "face_count",
                  "example_count", "cover_face", "cover_url")
        read_only_fields = fields

    @extend_schema_field(NULLABLE_URI)
    def get_cover_url(self, subject) -> str | None:
        return crop_url(self.context.get("request"), getattr(subject, "cover_face_id", None))


class SubjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Unique among your people, ignoring case.")
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    face = serializers.IntegerField(required=False, help_text="One of your faces, named as this new person at once.")


class SubjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200, required=False,
        help_text="A new name. Naming a person without one (a cluster) confirms its faces as that person.")
    notes = serializers.CharField(required=False, allow_blank=True)
    hidden = serializers.BooleanField(required=False, help_text="Hide from (or show again in) the people gallery.")


class MergeSerializer(serializers.Serializer):
    subjects = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=100,
        help_text="Your people to merge into this one (their faces, examples and feedback move).")


@extend_schema_field({"type": "boolean", "enum": [True]})
class TrueField(serializers.BooleanField):
    """A boolean that must be sent as true (validated by its serializer); the schema says so."""


class EraseSerializer(serializers.Serializer):
    confirm = TrueField(help_text="Must be true: erasure cannot be undone.")

    def validate_confirm(self, value):
        if not value:
            raise serializers.ValidationError("Send confirm: true to erase; it cannot be undone.")
        return value


class ErasureSerializer(serializers.Serializer):
    name = serializers.CharField()
    faces = serializers.IntegerField(help_text="Faces, each with its embedding.")
    examples = serializers.IntegerField(help_text="Of those, used for matching.")
    photos = serializers.IntegerField(help_text="Photos and videos they were found in (the files stay).")
    description = serializers.CharField(source="describe")


class MergeResultSerializer(serializers.Serializer):
    subject = SubjectSerializer(source="target")
    merged = serializers.ListField(child=serializers.CharField())
    faces_moved = serializers.IntegerField()
    faces_left_unknown = serializers.IntegerField(help_text='Faces that had said "not this person" to the target.')


class FaceSerializer(ModelSerializer):
    subject = SubjectRefSerializer(read_only=True, allow_null=True)
    crop_url = serializers.SerializerMethodField()
    used_for_matching = serializers.BooleanField(source="is_example", read_only=True)
    matching_note = serializers.SerializerMethodField()
    rejected_subjects = serializers.SerializerMethodField()

    class Meta:
        model = Face
        fields = ("id", "asset", "job", "frame_index", "timestamp", "box", "landmarks", "score", "quality",
                  "model_version", "subject", "match_distance", "is_example", "used_for_matching", "matching_note",
                  "decided_by", "decided_at", "dismissed", "rejected_subjects", "created_at", "crop_url")
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_crop_url(self, face) -> str:
        return absolute(self.context.get("request"), reverse("face-crop", args=[face.pk]))

    @extend_schema_field(NULLABLE_STR)
    def get_matching_note(self, face) -> str | None:
        """Why a face a person named does not teach recognition."""
        if face.decided_by == Decider.HUMAN and face.subject_id and not face.is_example:
            return (f"Named, but not used for matching: its quality {face.quality:.2f} is under "
                    f"{settings.SIGHTLINE_ENROL_MIN_QUALITY:.2f} (too small, blurred or turned away).")
        return None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_rejected_subjects(self, face) -> list[int]:
        """People a person said this face is not."""
        return sorted(r.subject_id for r in face.rejections.all())


class SimilarFaceSerializer(FaceSerializer):
    distance = serializers.FloatField(read_only=True)

    class Meta(FaceSerializer.Meta):
        fields = (*FaceSerializer.Meta.fields, "distance")
        read_only_fields = fields


class FaceRejectSerializer(serializers.Serializer):
    subject = serializers.IntegerField(required=False, help_text="The person it is not (default: its current one).")

    @classmethod
    def person_named(cls, data, owner_id: int) -> Subject | None:
        """The owner's person the body names, or None for "its current one"."""
        body = cls(data=data)
        body.is_valid(raise_exception=True)
        if "subject" not in body.validated_data:
            return None
        subject = Subject.objects.filter(owner_id=owner_id, pk=body.validated_data["subject"]).first()
        if subject is None:
            raise NotFound(f"You have no person with id {body.validated_data['subject']}.")
        return subject


# PATCH bodies are documented with every field optional; this one needs its one field.
_FACE_SUBJECT_SCHEMA = {
    "type": "object",
    "properties": {"subject": {"type": "integer", "nullable": True,
                               "description": "One of your people, or null for unknown."}},
    "required": ["subject"],
}
FACE_SUBJECT_BODY = {media_type: _FACE_SUBJECT_SCHEMA for media_type in (
    "application/json", "application/x-www-form-urlencoded", "multipart/form-data")}


class FaceSubjectSerializer(serializers.Serializer):
    """PATCH a face: who it is (one of the face owner's people), or null for "unknown"."""

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
        if "file" in attrs and "face_id" in attrs:
            raise serializers.ValidationError("Send either a photo (file) or a face id (face_id), not both.")
        if "file" not in attrs and "face_id" not in attrs:
            raise serializers.ValidationError("Send a photo (file) or one of your faces' ids (face_id).")
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
    faces = FaceChoiceSerializer(many=True, required=False,
                                 help_text="The faces found, for choosing one with face_index (when there were "
                                           "several).")


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
        # Exactly one complete pair: two photos plus half a pair of ids was taken for ids (a 500).
        photos = {"file1", "file2"} & attrs.keys()
        faces = {"face1", "face2"} & attrs.keys()
        if not (len(photos) == 2 and not faces or len(faces) == 2 and not photos):
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


# --- similar images ------------------------------------------------------------------------


class SimilarAssetSerializer(serializers.Serializer):
    """One of the owner's photos near another (``search_images.SimilarPhoto``)."""

    id = serializers.IntegerField(source="asset.pk")
    original_name = serializers.CharField(source="asset.original_name")
    created_at = serializers.DateTimeField(source="asset.created_at")
    width = serializers.IntegerField(source="asset.width")
    height = serializers.IntegerField(source="asset.height")
    distance = serializers.FloatField(help_text="Cosine distance of the image embeddings (0: alike).")
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, similar) -> str:
        return absolute(self.context.get("request"), reverse("asset-detail", args=[similar.asset.pk]))

    @extend_schema_field(NULLABLE_URI)
    def get_thumbnail_url(self, similar) -> str | None:
        if not similar.asset.thumbnail:
            return None
        return absolute(self.context.get("request"), reverse("asset-thumbnail", args=[similar.asset.pk]))


# --- appearances ---------------------------------------------------------------------------


class AppearanceSerializer(ModelSerializer):
    """One person's track through one video."""

    subject = SubjectRefSerializer(source="best_face.subject", read_only=True, allow_null=True)
    best_face = serializers.PrimaryKeyRelatedField(read_only=True)
    best_face_crop_url = serializers.SerializerMethodField()
    frame_url = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="best_face.decided_by", read_only=True)

    class Meta:
        model = Appearance
        fields = ("id", "asset", "start_seconds", "end_seconds", "face_count", "subject", "decided_by", "best_face",
                  "best_face_crop_url", "frame_url", "created_at")
        read_only_fields = fields

    @extend_schema_field(NULLABLE_URI)
    def get_best_face_crop_url(self, appearance) -> str | None:
        return crop_url(self.context.get("request"), appearance.best_face_id)

    @extend_schema_field(NULLABLE_URI)
    def get_frame_url(self, appearance) -> str | None:
        if not appearance.frame:
            return None
        return absolute(self.context.get("request"), reverse("appearance-frame", args=[appearance.pk]))
