"""The rq worker class Sightline runs.

- No fork per job (RQ's SimpleWorker): the models are loaded once, when the worker starts, and
  stay loaded. A forking worker would load them again in every work-horse (about 3.5 s a
  job here, against 0.1 s of inference for a photo). Job timeouts still apply (SIGALRM).
  A crash takes the worker down with the job; RQ and the sweep below re-queue the job, and
  the process manager (``manage.py serve``, or the platform for the Procfile) restarts it.
- Our stuck-job sweep runs in RQ's maintenance: it catches jobs whose worker died on this host
  at once (not after the heartbeat TTL), jobs whose rq job vanished, and jobs a crashed web
  process committed but never queued.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from rq.worker import SimpleWorker

logger = logging.getLogger(__name__)

MODEL_QUEUES = {"inference", "realtime"}


class SightlineWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        if MODEL_QUEUES & set(self.queue_names()):
            from recognition import inference

            inference.face_engine()
            inference.image_tagger()
        return super().work(*args, **kwargs)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from recognition.services import recover_stuck_jobs

        try:
            recover_stuck_jobs()
        except DatabaseError:
            logger.warning("stuck-job sweep skipped: database unavailable", exc_info=True)
