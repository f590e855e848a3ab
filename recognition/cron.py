"""Scheduled jobs, for `manage.py rqcron recognition.cron` (the Procfile's `cron` role; one per
deployment): the nightly full recluster of every owner's faces."""

from django.conf import settings
from rq import cron

from recognition import jobs

cron.register(jobs.recluster_everyone, "default", cron=settings.SIGHTLINE_RECLUSTER_CRON)
