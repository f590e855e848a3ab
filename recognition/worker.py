"""The rq worker class Sightline runs: RQ's own, plus our stuck-job sweep in its maintenance.

RQ already re-queues jobs of workers whose heartbeat expired; the sweep also catches jobs whose
worker process died on this host (seen at once, not after the heartbeat TTL), jobs whose rq job
vanished, and jobs a crashed web process committed but never queued.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from rq.worker import Worker

logger = logging.getLogger(__name__)


class SightlineWorker(Worker):
    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from recognition.services import recover_stuck_jobs

        try:
            recover_stuck_jobs()
        except DatabaseError:
            logger.warning("stuck-job sweep skipped: database unavailable", exc_info=True)
