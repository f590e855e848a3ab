"""Job events on the channel layer: one group per owner and one for staff; consumers filter further.

Message format (also what WebSocket clients receive, documented in the API docs):

    {"type": "job.stage", "job": 12, "asset": 7, "stage": "detecting", "progress": 10,
     "at": "2026-11-22T10:00:00.123456+00:00", "error": null}

``at`` is the job's last change; a consumer never sends an event older than one it already sent
for the same job, so a late subscriber that got the current state first never goes backwards.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

EVENT_TYPE = "job.stage"


# Staff see every user's assets on the dashboard, so their ws/jobs/ stream carries every job.
STAFF_GROUP = "jobs.staff"


def user_group(user_id: int) -> str:
    return f"jobs.user.{user_id}"


def job_event(job) -> dict:
    return {
        "type": EVENT_TYPE,
        "job": job.pk,
        "asset": job.asset_id,
        "stage": job.stage,
        "progress": job.progress,
        "at": job.updated_at.isoformat() if job.updated_at else None,
        "error": job.error or None,
    }


def publish(user_id: int, event: dict) -> None:
    """Send to the owner's group and the staff group. Best effort: a Redis hiccup must not fail
    the job itself; the state is in the database and a reconnecting client gets it first thing."""
    groups = (user_group(user_id), STAFF_GROUP)
    try:
        outcomes = async_to_sync(_send_to_groups)(groups, {"type": "job.event", "event": event})
    except Exception as exc:  # noqa: BLE001 - no event loop, no layer: logged and ignored
        outcomes = [exc] * len(groups)
    for group, outcome in zip(groups, outcomes):
        if isinstance(outcome, Exception):
            logger.warning("could not publish job event", extra={"job": event.get("job"), "group": group},
                           exc_info=outcome)


async def _send_to_groups(groups: tuple[str, ...], message: dict) -> list:
    """Both sends in one trip to the event loop, side by side; each one's exception returned."""
    layer = get_channel_layer()
    return await asyncio.gather(*(layer.group_send(group, message) for group in groups), return_exceptions=True)
