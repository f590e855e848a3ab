"""WebSocket streams of job events: ``ws/jobs/`` (all of the user's jobs; every user's for
staff, whose dashboard lists everyone's files) and ``ws/jobs/<id>/`` (one job)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.ownership import owned_by
from config.consumers import AuthenticatedJsonConsumer
from recognition import events
from recognition.models import Job

# Close code for "no such job (for you)": like HTTP 404, and no hint whether it exists.
CLOSE_NOT_FOUND = 4404
# On connect to ws/jobs/, the state of active jobs and of jobs finished in the last hour.
RECENT_SECONDS = 3600
INITIAL_STATES = 200  # the newest jobs' states sent on connect
# How often a connection joins its group again and sends what changed meanwhile. Group
# membership lives in Redis: a flushed or restarted Redis (or channels-redis' group expiry,
# a day) would otherwise leave an open page quiet for good.
REJOIN_SECONDS = 30


class JobEventsConsumer(AuthenticatedJsonConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        self.job_id = self.scope["url_route"]["kwargs"].get("job_id")
        self.last_sent_at: dict[int, str] = {}
        if self.job_id is not None:
            job_owner = await self._job_owner(self.job_id)
            if job_owner is None:
                await self.close(code=CLOSE_NOT_FOUND)
                return
            self.group = events.user_group(job_owner)
        else:
            self.group = events.STAFF_GROUP if self.user.is_staff else events.user_group(self.user.pk)
        # Join first, then read the state: an event in between is queued, not lost, and the
        # ``at`` check below drops it if the state we send already includes it.
        joined_at = timezone.now()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for event in await self._current_states():
            await self._send_event(event)
        self.rejoining = asyncio.create_task(self._keep_joined(joined_at))

    async def disconnect(self, code):
        if hasattr(self, "rejoining"):
            self.rejoining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.rejoining
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _keep_joined(self, joined_at: datetime):
        """Join again every ``REJOIN_SECONDS``, then send the states that changed since the last
        join (ones already sent are skipped): events lost with the membership are made good."""
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                now = timezone.now()
                await self.channel_layer.group_add(self.group, self.channel_name)
                for event in await self._current_states(changed_since=joined_at):
                    await self._send_event(event, only_newer=True)
                joined_at = now
            except (RedisError, OSError, DatabaseError):  # Redis or the database away: next time
                continue

    async def receive_json(self, content, **kwargs):
        # The stream is one-way; a client may ask for the current state again.
        if isinstance(content, dict) and content.get("type") == "state":
            for event in await self._current_states():
                await self._send_event(event, force=True)

    async def job_event(self, message):
        event = message["event"]
        if self.job_id is None or event["job"] == self.job_id:
            await self._send_event(event)

    async def _send_event(self, event: dict, force: bool = False, only_newer: bool = False):
        last = self.last_sent_at.get(event["job"])
        if not force and last is not None and event["at"] is not None and (
            event["at"] <= last if only_newer else event["at"] < last
        ):
            return
        self.last_sent_at[event["job"]] = event["at"]
        await self.send_json(event)

    def _jobs(self):
        return owned_by(Job.objects.all(), self.user, "asset__owner")

    @database_sync_to_async
    def _job_owner(self, job_id: int) -> int | None:
        """The owner's id of a job this user may watch (own, or any for staff), else None."""
        return self._jobs().filter(pk=job_id).values_list("asset__owner_id", flat=True).first()

    @database_sync_to_async
    def _current_states(self, changed_since: datetime | None = None) -> list[dict]:
        from datetime import timedelta

        from django.db.models import Q
        from django.utils import timezone

        jobs = self._jobs().select_related("asset")
        if changed_since is not None:
            jobs = jobs.filter(updated_at__gte=changed_since)
        if self.job_id is not None:
            jobs = jobs.filter(pk=self.job_id)
        else:
            recent = timezone.now() - timedelta(seconds=RECENT_SECONDS)
            jobs = jobs.filter(Q(finished_at__isnull=True) | Q(finished_at__gte=recent))
        newest = list(jobs.newest_first()[:INITIAL_STATES])
        return [events.job_event(job) for job in reversed(newest)]  # oldest first, as they happened
