"""Processing jobs: list, retrieve, re-run."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.ownership import OwnedQuerysetMixin
from recognition import services
from recognition import serializers as bodies
from recognition.models import Job, Stage

from recognition.api.common import (
    JOB_EVENTS_DOC,
)



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
