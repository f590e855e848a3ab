"""Requests answered while the caller waits: recognize one photo (1:N), verify two (1:1)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.ownership import IsOwnerOrStaff, owned_by
from config.refusals import NotFound
from recognition import enrollment, matching
from recognition import serializers as bodies
from recognition.models import Face

from recognition.api.common import (
    analyze_photo_upload,
)



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
                    raise NotFound(f"{field}: You have no face with id {data[field]}.")
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
