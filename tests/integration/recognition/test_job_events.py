"""Job stage changes reach the owner's WebSocket, in order, after commit — and nobody else's."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.base import ContentFile
from rest_framework_simplejwt.tokens import RefreshToken

from config.asgi import application
from media.models import Asset
from recognition.consumers import CLOSE_NOT_FOUND
from recognition.models import Job, Stage

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")
STAGES = ["uploading", "queued", "detecting", "enhancing", "recognizing", "completed"]


def make_job(owner) -> Job:
    asset = Asset.objects.create(
        owner=owner, kind=Asset.Kind.IMAGE, original_name="x.jpg", sha256=f"{owner.pk:064d}",
        size_bytes=3, content_type="image/jpeg", width=1, height=1,
        file=ContentFile(b"abc", name="x.jpg"),
    )
    job = Job.objects.create(asset=asset)
    job.advance(Stage.UPLOADING, progress=0)
    return job


async def connect(path, user):
    token = await sync_to_async(lambda: str(RefreshToken.for_user(user).access_token))()
    communicator = WebsocketCommunicator(application, f"{path}?token={token}", headers=[ORIGIN])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_stream_shows_every_stage_in_order(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = await sync_to_async(make_job)(user)
    communicator, connected, _ = await connect("/ws/jobs/", user)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    assert (first["job"], first["stage"]) == (job.pk, "uploading")  # current state first

    def run_stages():
        for stage in STAGES[1:]:
            job.advance(stage)

    await sync_to_async(run_stages)()
    received = [await communicator.receive_json_from(timeout=5) for _ in STAGES[1:]]
    assert [event["stage"] for event in received] == STAGES[1:]
    assert received[-1] == {
        "type": "job.stage", "job": job.pk, "asset": job.asset_id, "stage": "completed",
        "progress": 100, "at": received[-1]["at"], "error": None,
    }
    await communicator.disconnect()


async def test_late_subscriber_gets_the_current_state_first(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = await sync_to_async(make_job)(user)
    await sync_to_async(job.advance)(Stage.DETECTING)
    await sync_to_async(job.advance)(Stage.ENHANCING)
    communicator, connected, _ = await connect(f"/ws/jobs/{job.pk}/", user)
    assert connected
    state = await communicator.receive_json_from(timeout=5)
    assert (state["stage"], state["progress"]) == ("enhancing", 50)
    await sync_to_async(job.fail)("The file could not be decoded.", "corrupt")
    failed = await communicator.receive_json_from(timeout=5)
    assert (failed["stage"], failed["error"]) == ("failed", "The file could not be decoded.")
    await communicator.disconnect()


async def test_events_of_a_rolled_back_change_are_never_sent(user, settings, tmp_path):
    from django.db import transaction

    settings.MEDIA_ROOT = tmp_path
    job = await sync_to_async(make_job)(user)
    communicator, _, _ = await connect(f"/ws/jobs/{job.pk}/", user)
    await communicator.receive_json_from(timeout=5)

    def advance_then_roll_back():
        try:
            with transaction.atomic():
                job.advance(Stage.DETECTING)
                raise RuntimeError("boom")
        except RuntimeError:
            pass

    await sync_to_async(advance_then_roll_back)()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_other_users_jobs_are_closed_like_missing_ones_and_never_streamed(user, other_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = await sync_to_async(make_job)(user)
    communicator, connected, code = await connect(f"/ws/jobs/{job.pk}/", other_user)
    assert not connected and code == CLOSE_NOT_FOUND
    missing, connected, code = await connect("/ws/jobs/999999/", other_user)
    assert not connected and code == CLOSE_NOT_FOUND

    snooper, connected, _ = await connect("/ws/jobs/", other_user)
    assert connected
    await sync_to_async(job.advance)(Stage.DETECTING)
    assert await snooper.receive_nothing(timeout=0.5)
    await snooper.disconnect()


async def test_staff_stream_carries_every_users_jobs_once(user, staff_user, settings, tmp_path):
    """The staff dashboard lists everyone's files, so its live stream must cover them too."""
    settings.MEDIA_ROOT = tmp_path
    alices = await sync_to_async(make_job)(user)
    own = await sync_to_async(make_job)(staff_user)
    staff, connected, _ = await connect("/ws/jobs/", staff_user)
    assert connected
    initial = {(await staff.receive_json_from(timeout=5))["job"] for _ in range(2)}
    assert initial == {alices.pk, own.pk}

    await sync_to_async(alices.advance)(Stage.DETECTING)
    await sync_to_async(own.advance)(Stage.DETECTING)
    live = [await staff.receive_json_from(timeout=5) for _ in range(2)]
    assert [(event["job"], event["stage"]) for event in live] == [(alices.pk, "detecting"), (own.pk, "detecting")]
    assert await staff.receive_nothing(timeout=0.5)  # its own job's event is not doubled
    await staff.disconnect()


async def test_an_open_stream_recovers_when_redis_loses_its_groups(user, settings, tmp_path, monkeypatch):
    """Redis flushed or restarted: the membership is gone, so events stop reaching the socket
    until it joins again; what changed meanwhile is then sent."""
    import redis

    from recognition import consumers

    monkeypatch.setattr(consumers, "REJOIN_SECONDS", 0.5)
    settings.MEDIA_ROOT = tmp_path
    job = await sync_to_async(make_job)(user)
    communicator, connected, _ = await connect("/ws/jobs/", user)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["stage"] == "uploading"

    await sync_to_async(redis.Redis.from_url(settings.REDIS_URL).flushall)()  # groups and messages gone
    await sync_to_async(job.advance)(Stage.QUEUED)
    event = await communicator.receive_json_from(timeout=5)
    assert (event["job"], event["stage"]) == (job.pk, "queued")

    await sync_to_async(job.advance)(Stage.DETECTING)  # live again, and sent once
    assert (await communicator.receive_json_from(timeout=5))["stage"] == "detecting"
    assert await communicator.receive_nothing(timeout=1.2)
    await communicator.disconnect()


async def test_anonymous_cannot_connect():
    communicator = WebsocketCommunicator(application, "/ws/jobs/", headers=[ORIGIN])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_an_upload_is_announced_once_as_queued_with_its_upload_timed(user, settings, tmp_path):
    """The job's row is first seen queued (it commits with the stored file), so the upload sends
    one event, and the row already names the rq job it was enqueued as."""
    import django_rq

    from recognition import services
    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    communicator, connected, _ = await connect("/ws/jobs/", user)
    assert connected
    outcome = await sync_to_async(services.upload)(user, upload_of(jpeg_bytes(seed=7)))
    event = await communicator.receive_json_from(timeout=5)
    assert (event["job"], event["stage"]) == (outcome.job.pk, "queued")
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()

    job = await Job.objects.aget(pk=outcome.job.pk)
    assert set(job.timings) == {"uploading", "queued"} and job.timings["uploading"]["seconds"] >= 0
    queued = await sync_to_async(lambda: django_rq.get_queue("inference").get_job_ids())()
    assert job.rq_job_id in queued


def test_a_process_without_an_event_loop_sends_its_events_over_the_connections_it_has(settings):
    """A worker sends several events per job from plain threads: they reuse the process's Redis
    connections (before, each event opened and closed two), and still arrive after Redis drops
    them."""
    import redis
    from channels.layers import get_channel_layer

    from recognition import events

    client = redis.Redis.from_url(settings.REDIS_URL)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.user_group(4242), channel)
    events.publish(4242, {"job": 0})  # the first send connects
    connected = client.info("stats")["total_connections_received"]
    for job in range(1, 41):
        events.publish(4242, {"job": job})
    assert client.info("stats")["total_connections_received"] - connected <= 2

    client.client_kill_filter(_type="normal", skipme=True)
    events.publish(4242, {"job": 41})
    received = [async_to_sync(layer.receive)(channel)["event"]["job"] for _ in range(42)]
    assert received == list(range(42))


async def test_a_batch_advanced_together_saves_and_streams_every_job(user, settings, tmp_path):
    """``Job.advance_all``: one UPDATE for a batch's jobs, and each job's row, timing, model
    version, ``updated_at`` (the recovery sweep's clock) and event as ``advance`` gives them."""
    settings.MEDIA_ROOT = tmp_path

    def queued_jobs():
        jobs = []
        for n in range(3):
            job = make_job(user)
            Asset.objects.filter(pk=job.asset_id).update(sha256=f"{user.pk:032d}{n:032d}")
            job.advance(Stage.QUEUED)
            jobs.append(job)
        return jobs

    jobs = await sync_to_async(queued_jobs)()
    before = {job.pk: job.updated_at for job in jobs}
    communicator, connected, _ = await connect("/ws/jobs/", user)
    assert connected
    for _ in jobs:  # current states first
        await communicator.receive_json_from(timeout=5)

    await sync_to_async(Job.advance_all)(jobs, Stage.DETECTING, model_version="models-v1")

    received = [await communicator.receive_json_from(timeout=5) for _ in jobs]
    assert sorted((e["job"], e["stage"]) for e in received) == sorted((j.pk, "detecting") for j in jobs)
    rows = await sync_to_async(lambda: list(Job.objects.filter(pk__in=[j.pk for j in jobs])))()
    for row in rows:
        assert (row.stage, row.model_version) == ("detecting", "models-v1")
        assert row.updated_at > before[row.pk]
        assert "ended_at" in row.timings["queued"] and "started_at" in row.timings["detecting"]
    await communicator.disconnect()
