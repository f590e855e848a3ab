"""Schema fuzzing: schemathesis sends generated requests, valid and invalid, to every operation of
``/api/schema/`` as a signed-in user who owns a photo, a video, faces, a person and an appearance.

Every answer must be a non-5xx that matches the schema (status, content type, body); every
error body must be the API's one shape (``config.api``); and no answer may carry another user's
data, even when the fuzzer is steered to their ids (which must answer 404).

In process (WSGI, the same views and middleware Daphne serves) against the real PostgreSQL and
Redis, inside the test's transaction. ``SIGHTLINE_FUZZ_EXAMPLES`` sets the fuzzing cases per
operation (a few here; ``bench/schema_fuzz.py`` runs many more).
"""

from __future__ import annotations

import json
import os
import sys

import django_rq
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from recognition.models import Appearance, Face, Subject
from tests.integration.recognition.api_helpers import enrolled_photo, jpeg_bytes, make_face, stored_asset
from tests.servers import log_tail, start_process, stop_process
from tests.unit.media import samples

EXAMPLES = int(os.environ.get("SIGHTLINE_FUZZ_EXAMPLES", "5"))
# examples: the schema's own; coverage: each constraint's edges and violations, other methods;
# fuzzing: random cases (EXAMPLES of them). The suite runs the quick two; the bench all three.
PHASES = os.environ.get("SIGHTLINE_FUZZ_PHASES", "examples,fuzzing").split(",")
SEED = os.environ.get("SIGHTLINE_FUZZ_SEED")

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json", application,
    config=SchemathesisConfig.from_dict({
        "phases": {phase: {"enabled": phase in PHASES} for phase in ("examples", "coverage", "fuzzing")},
        **({"seed": int(SEED)} if SEED else {}),
    }),
)

# What the running test seeded: {"mine": {...}, "theirs": {...}} ids per kind, and the other
# user's markers, which must never appear in an answer.
SEEDED: dict = {}
OTHER_MARKERS = ("mallory-secret", "mallory@example.com")

# The path prefix an ``{id}`` belongs to.
KINDS = {"/api/v1/assets/": "asset", "/api/v1/faces/": "face", "/api/v1/jobs/": "job",
         "/api/v1/subjects/": "subject", "/api/v1/appearances/": "appearance"}


def _kind(path: str, name: str) -> str | None:
    if name == "asset_id":
        return "asset"
    if name == "face_id":
        return "face"
    return next((kind for prefix, kind in KINDS.items() if path.startswith(prefix)), None)


@schema.hook
def map_path_parameters(context, path_parameters):
    """Random ids almost never exist: most cases go to the user's own objects, some to the other
    user's (which must answer 404), the rest stay as generated. Deterministic in the drawn value,
    so Hypothesis can shrink."""
    if not SEEDED or context.operation is None or not isinstance(path_parameters, dict):
        return path_parameters
    mapped = dict(path_parameters)
    for name, value in path_parameters.items():
        kind = _kind(context.operation.path, name)
        if kind is None or not isinstance(value, int) or isinstance(value, bool):
            continue
        if value % 4 in (0, 1):
            mapped[name] = SEEDED["mine"][kind]
        elif value % 4 == 2:
            mapped[name] = SEEDED["theirs"][kind]
    return mapped


def error_body_is_the_apis_one(ctx, response, case):
    """4xx answers in JSON carry ``{"message", "status", "code"}`` with the response's status."""
    if not 400 <= response.status_code < 500:
        return None
    if "json" not in (response.headers.get("content-type") or [""])[0]:
        raise Failure(operation=case.operation.label, title="Error answer is not JSON",
                      message=f"{response.status_code} with {response.headers.get('content-type')}")
    body = json.loads(response.content)
    shape_ok = (isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]
                and body.get("status") == response.status_code and isinstance(body.get("code"), str))
    if not shape_ok:
        raise Failure(operation=case.operation.label, title="Error body is not the API's shape",
                      message=f"{response.status_code}: {response.content[:300]!r}")
    return True


def never_another_users_data(ctx, response, case):
    """The other user's objects answer 404 and their names never show up."""
    text = response.content.decode("utf-8", "replace")
    for marker in OTHER_MARKERS:
        if marker in text:
            raise Failure(operation=case.operation.label, title="Another user's data in an answer",
                          message=f"{response.status_code} contains {marker!r}")
    theirs = SEEDED.get("theirs", {})
    targets_theirs = any(
        _kind(case.operation.path, name) and value == theirs.get(_kind(case.operation.path, name))
        for name, value in (case.path_parameters or {}).items()
    )
    if targets_theirs and response.status_code < 400:
        raise Failure(operation=case.operation.label, title="Another user's object answered",
                      message=f"{case.method} {case.formatted_path} -> {response.status_code}")
    return True


def _seed(owner, marker: str) -> dict:
    photo = enrolled_photo(owner, f"{marker}-photo.jpg", f"{marker}-person")
    make_face(photo["asset"], box=(50, 8, 80, 44))  # an unknown face next to the named one
    video = stored_asset(owner, samples.synthetic_video(frames=10, fps=5), f"{marker}-clip.mp4")
    faces = [make_face(video, frame_index=i, timestamp=i / 2, subject=photo["subject"]) for i in range(3)]
    appearance = Appearance.objects.create(
        asset=video, owner_id=owner.pk, start_seconds=0, end_seconds=1, best_face=faces[1],
        embedding=np.mean([f.embedding for f in faces], axis=0), face_count=3)
    Face.objects.filter(pk__in=[f.pk for f in faces]).update(appearance=appearance)
    stored_asset(owner, jpeg_bytes(seed=7), f"{marker}-other.jpg")
    return {"asset": photo["asset"].pk, "face": photo["face"].pk, "job": photo["job"].pk,
            "subject": photo["subject"].pk, "appearance": appearance.pk}


class RealtimeWorker:
    """Recognize, verify and enrolment wait on a realtime worker; the fuzzer sends them real
    (tiny) images, so one serves, as in production. It loads its models while the first
    operations are fuzzed; only those that need it wait for it."""

    PATHS = ("/api/v1/recognize/", "/api/v1/verify/", "/api/v1/subjects/{id}/examples/")

    def __init__(self):
        # tests.servers.start_worker_process, without waiting for the models here.
        self.process = start_process([sys.executable, "manage.py", "rqworker", "realtime",
                                      "--worker-class", "recognition.worker.SightlineWorker"])
        self.serving = False

    def ensure_serving(self):
        if not self.serving:
            if self.process.poll() is not None:
                pytest.fail(f"the realtime worker exited:\n{log_tail(self.process)}")
            # Any realtime worker may answer: the recognition tests' session-wide one can still
            # be running, and then it serves these requests too.
            probe = django_rq.get_queue("realtime").enqueue(os.getpid, ttl=180, result_ttl=60)
            if probe.latest_result(timeout=180) is None:
                pytest.fail(f"no realtime worker served a job within 180 s:\n{log_tail(self.process)}")
            self.serving = True


@pytest.fixture(scope="module")
def realtime_worker(django_db_setup):
    worker = RealtimeWorker()
    yield worker
    print(f"--- realtime worker {worker.process.pid}, last lines of its log ---\n{log_tail(worker.process)}")
    stop_process(worker.process)


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, realtime_worker):
    """Two users' libraries, committed once for the module (each test's changes roll back with
    its transaction), and the fuzzing user's access token."""
    from django.contrib.auth import get_user_model

    with django_db_blocker.unblock():
        users = get_user_model().objects
        owner = users.create_user(email="fuzz-owner@example.com", password="fuzzing long secret")
        mallory = users.create_user(email="mallory@example.com", password="mallory long secret")
        SEEDED["mine"] = _seed(owner, "fuzz-owner")
        SEEDED["theirs"] = _seed(mallory, "mallory-secret")
        SEEDED["mallory"] = mallory.pk
        SEEDED["mallory_data"] = _library_of(mallory)
        token = str(RefreshToken.for_user(owner).access_token)  # the blacklist app stores the refresh token
    yield token
    SEEDED.clear()
    with django_db_blocker.unblock():
        # Faces first: an example face must keep its person (a check constraint) until it goes.
        Face.objects.filter(owner__in=[owner, mallory]).delete()
        # Tokens outlive their user (user set to NULL): other tests count every token.
        OutstandingToken.objects.filter(user__in=[owner, mallory]).delete()
        users.filter(pk__in=[owner.pk, mallory.pk]).delete()


def _library_of(user) -> dict:
    return {"subjects": list(Subject.objects.filter(owner=user).values_list("pk", "name", "hidden")),
            "faces": list(Face.objects.filter(owner=user).values_list("pk", "subject_id", "dismissed")),
            "appearances": Appearance.objects.filter(owner=user).count()}


@pytest.fixture
def _requests_keep_the_test_connection():
    """Django closes the database connection after each request; inside the test's transaction
    that loses it. The test client turns this off the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Not gates: these judge the server's reading of requests, not its answers. DRF is lenient on
# purpose (a number for a string field, an empty query value as "not given"), and some schema-valid
# requests are refused for what they mean (a photo with no face, an invalid refresh token) with a
# clear 400. Every answer to such a request is still checked above. bench/schema_fuzz.py reports them.
LENIENCY_CHECKS = [negative_data_rejection, positive_data_acceptance]

# bench/schema_fuzz.py: where to write what was sent and answered (JSON), leniency findings included.
REPORT_PATH = os.environ.get("SIGHTLINE_FUZZ_REPORT")
REPORT: dict = {"operations": {}, "lenient": []}


def _recorded(ctx, response, case):
    """Counts every answer by operation and status (for the bench report); never fails."""
    statuses = REPORT["operations"].setdefault(case.operation.label, {})
    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return None


def _reported(check):
    """A leniency check whose findings are written to the report instead of failing."""
    def reported_check(ctx, response, case):
        try:
            return check(ctx, response, case)
        except Failure as failure:
            REPORT["lenient"].append({"operation": case.operation.label, "check": check.__name__,
                                      "status": response.status_code, "title": failure.title,
                                      "message": failure.message[:300],
                                      "answer": response.content[:300].decode("utf-8", "replace")})
            return None
    reported_check.__name__ = check.__name__
    return reported_check


ADDITIONAL_CHECKS = [error_body_is_the_apis_one, never_another_users_data] + (
    [_recorded, *map(_reported, LENIENCY_CHECKS)] if REPORT_PATH else [])


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    if REPORT_PATH:
        with open(REPORT_PATH, "w") as report:
            json.dump(REPORT, report, indent=1)

_settings = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None, print_blob=True,
    suppress_health_check=list(HealthCheck),
)


def _fuzz(case, token, realtime_worker):
    if case.operation.path in RealtimeWorker.PATHS:
        realtime_worker.ensure_serving()
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        additional_checks=ADDITIONAL_CHECKS,
        excluded_checks=LENIENCY_CHECKS,
    )
    assert _library_of(SEEDED["mallory"]) == SEEDED["mallory_data"], "another user's data changed"


# Enrolling a photo stores it, then has the realtime worker (another process) read it back: that
# needs committed rows, so it is fuzzed outside a test transaction, last (the database is emptied
# after it).
ENROLMENT = {"path": "/api/v1/subjects/{id}/examples/", "method": "POST"}


@pytest.mark.django_db
@schema.exclude(**ENROLMENT).parametrize()
@_settings
def test_every_operation_answers_per_schema_without_server_errors(case, seeded, realtime_worker,
                                                                  _requests_keep_the_test_connection):
    _fuzz(case, seeded, realtime_worker)


@pytest.mark.django_db(transaction=True)
@schema.include(**ENROLMENT).parametrize()
@_settings
def test_enrolment_answers_per_schema_without_server_errors(case, seeded, realtime_worker):
    _fuzz(case, seeded, realtime_worker)
