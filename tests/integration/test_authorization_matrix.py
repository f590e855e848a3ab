"""Who may do what on every route: anonymous, another user (B), the owner (A) and staff.

Routes are discovered, not listed by hand: every pattern of the URL conf (``get_resolver()``)
with the HTTP methods its view allows (a DRF view's handlers, a viewset route's actions, a
function view's ``require_GET``/``require_POST``/``require_http_methods``), and every WebSocket
route of ``config.routing``. Each must have an entry below: ``ROUTES`` (an ownership check per
method and role), ``PUBLIC`` (open to anyone, on purpose), or the admin site, which Django's
``admin_view`` guards as a whole (``test_admin_route``). A route or a method with no entry fails
``test_every_route_and_method_has_an_entry``, naming it: no endpoint ships without an answer to
"what does another user get here?".

The rules the table keeps (``test_the_table_keeps_the_rules``): anonymous gets 401 from the API
(JWT's ``WWW-Authenticate`` makes DRF answer 401, not 403) and a redirect to the login page from
pages; another user gets 404 for A's objects (never 403: no hint they exist) and, on
collections, 200 with none of A's rows; the owner and staff succeed. Every case builds A's world
afresh, so no case depends on another's order, and every refused request is checked to have
changed nothing of A's.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from pgvector.django import VectorField
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from config.consumers import CLOSE_UNAUTHENTICATED
from media.models import Asset
from recognition.consumers import CLOSE_NOT_FOUND
from recognition.models import (
    IMAGE_EMBEDDING_DIMENSIONS,
    Appearance,
    ErasedFace,
    Face,
    FaceRejection,
    ImageEmbedding,
    ImageTag,
    Job,
    Subject,
)
from tests.integration.recognition.api_helpers import crop_bytes, jpeg_bytes, make_face, stored_asset, unit_vector

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "other", "owner", "staff")
LOGIN = "login"  # a page's answer to anonymous: 302 to the login page, with ?next= back here
ADMIN_LOGIN = "/admin/login/"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # answered by the framework for every route


# --- Discovery ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    template: str  # "/api/v1/assets/<pk>/file/": the pattern with every parameter as <name>
    name: str | None  # "admin:index", "asset-file"; None for unnamed patterns
    methods: frozenset[str]


def _readable(pattern: str) -> str:
    """``^assets/(?P<pk>[^/.]+)/$`` and ``assets/<int:asset_id>/`` → ``assets/<pk>/``, ``assets/<asset_id>/``."""
    pattern = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)\??", r"<\1>", pattern)
    pattern = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", pattern)
    return re.sub(r"[\^$]", "", pattern)


def _function_methods(view) -> frozenset[str] | None:
    """The methods a ``require_http_methods`` decorator (under any other) lets through."""
    while inspect.isfunction(view):
        closure = inspect.getclosurevars(view).nonlocals if view.__closure__ else {}
        if "request_method_list" in closure:
            return frozenset(closure["request_method_list"])
        view = getattr(view, "__wrapped__", None)
    return None


def _methods(callback) -> frozenset[str]:
    if getattr(callback, "actions", None):  # a DRF viewset route: the methods it maps to actions
        methods = {method.upper() for method in callback.actions}
    elif (cls := getattr(callback, "cls", None) or getattr(callback, "view_class", None)) is not None:
        methods = {method.upper() for method in cls.http_method_names if hasattr(cls, method)}
    else:
        # A function view without a method decorator answers any method: a browser sends these two.
        methods = _function_methods(callback) or {"GET", "POST"}
    return frozenset(methods - IGNORED_METHODS)


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from _walk(pattern.url_patterns, prefix + _readable(str(pattern.pattern)), inner)
        elif isinstance(pattern, URLPattern):
            name = ":".join(filter(None, [namespace, pattern.name])) if pattern.name else None
            yield Route("/" + prefix + _readable(str(pattern.pattern)), name, _methods(pattern.callback))


@cache
def http_routes() -> tuple[Route, ...]:
    return tuple(_walk(get_resolver().url_patterns))


@cache
def websocket_routes() -> tuple[str, ...]:
    from config.routing import websocket_urlpatterns

    return tuple(route.template for route in _walk(websocket_urlpatterns))


def is_admin(route: Route) -> bool:
    return route.template.startswith("/admin/")


# --- A's world ------------------------------------------------------------------------------

@dataclass
class World:
    """What user A owns, built afresh for every case; B owns nothing at all."""

    owner: object
    other: object
    staff: object
    asset: Asset
    job: Job
    subject: Subject  # named, with ``face`` as its example
    second_subject: Subject
    face: Face  # an example face of ``subject``
    spare_face: Face  # unknown, clear
    dismissed_face: Face
    appearance: Appearance  # a track of its own faces, named ``subject``
    refresh: str  # one of A's refresh tokens
    report: str = "daily"

    def markers(self) -> list[str]:
        """Text that shows A's data: in an answer to B it is a leak."""
        return [
            self.asset.original_name, self.subject.name, self.second_subject.name, self.owner.email,
            f"/assets/{self.asset.pk}/", f"/people/{self.subject.pk}/", f"/people/{self.second_subject.pk}/",
        ]


def build_world(owner, other, staff) -> World:
    asset = stored_asset(owner, jpeg_bytes(seed=1), "alice-private-holiday.jpg")
    ImageEmbedding.objects.create(asset=asset, model_version="test",
                                  embedding=np.full(IMAGE_EMBEDDING_DIMENSIONS, 0.5, dtype=np.float32))
    subject = Subject.objects.create(owner=owner, name="Alice Secret Friend")
    second_subject = Subject.objects.create(owner=owner, name="Alice Second Friend")
    track_faces = [make_face(asset, embedding=unit_vector(10 + i), subject=subject, frame_index=i, timestamp=i / 2)
                   for i in range(2)]
    appearance = Appearance.objects.create(asset=asset, owner=owner, start_seconds=0.0, end_seconds=0.5,
                                           best_face=track_faces[0], embedding=unit_vector(10), face_count=2)
    appearance.frame.save("frame.jpg", ContentFile(crop_bytes()))
    Face.objects.filter(pk__in=[f.pk for f in track_faces]).update(appearance=appearance)
    return World(
        owner=owner, other=other, staff=staff, asset=asset, job=asset.jobs.get(),
        subject=subject, second_subject=second_subject,
        face=make_face(asset, embedding=unit_vector(1), subject=subject, is_example=True),
        spare_face=make_face(asset, embedding=unit_vector(2)),
        dismissed_face=make_face(asset, embedding=unit_vector(3), dismissed=True),
        appearance=appearance, refresh=str(RefreshToken.for_user(owner)),
    )


@pytest.fixture
def world(user, other_user, staff_user, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path
    return build_world(user, other_user, staff_user)


def snapshot(owner) -> dict:
    """Every row of A's that a request could change (vectors aside), and A's revoked tokens."""
    tables = [(Asset, "owner"), (Job, "asset__owner"), (Face, "owner"), (Subject, "owner"), (Appearance, "owner"),
              (FaceRejection, "face__owner"), (ErasedFace, "asset__owner"), (ImageTag, "asset__owner"),
              (ImageEmbedding, "asset__owner"), (type(owner), "pk")]
    rows = {}
    for model, lookup in tables:
        fields = [f.attname for f in model._meta.concrete_fields if not isinstance(f, VectorField)]
        rows[model.__name__] = list(model.objects.filter(**{lookup: owner.pk}).order_by("pk").values_list(*fields))
    rows["revoked"] = list(BlacklistedToken.objects.filter(token__user=owner).values_list("token__jti", flat=True))
    return rows


# --- The table ------------------------------------------------------------------------------

Body = Callable[[World], dict] | dict | None


@dataclass(frozen=True)
class Access:
    """Who gets what for one method of one route.

    ``objects``: which of A's things fill the route's parameters (``{"pk": "asset"}``: A's asset's
    id). Statuses per role; ``LOGIN`` for a redirect to the login page. ``private``: B's 200 must
    show none of A's data. ``why``: the reason for an answer the rules do not give.
    """

    api: bool
    anonymous: int | str
    other: int
    owner: int
    staff: int
    objects: dict[str, str] = field(default_factory=dict)
    body: Body = None
    format: str = "json"
    headers: dict[str, str] = field(default_factory=dict)
    private: bool = False
    why: str = ""


def api_owned(status: int, body: Body = None, **objects) -> Access:
    """An API route on one of A's objects: B gets 404, as if it did not exist; staff what A gets."""
    return Access(True, 401, 404, status, status, objects, body)


def api_mine(status: int, body: Body = None, format: str = "json") -> Access:
    """An API route on the caller's own things (a list, a create): B gets his own, none of A's."""
    return Access(True, 401, status, status, status, body=body, format=format, private=True)


def page_owned(status: int, body: Body = None, **objects) -> Access:
    return Access(False, LOGIN, 404, status, status, objects, body)


def page_mine(status: int, body: Body = None, **extra) -> Access:
    return Access(False, LOGIN, status, status, status, body=body, private=True, **extra)


def photo(seed: int) -> SimpleUploadedFile:
    return SimpleUploadedFile(f"upload-{seed}.jpg", jpeg_bytes(seed=seed), content_type="image/jpeg")


ROUTES: dict[str, dict[str, Access]] = {
    # accounts
    "/api/v1/auth/logout/": {"POST": replace(
        api_mine(205, body=lambda w: {"refresh": w.refresh}), other=400, staff=400, private=False,
        why="the body names A's refresh token: anyone else is refused (400, the token stays valid)")},
    "/api/v1/me/": {"GET": api_mine(200), "PATCH": api_mine(200, body={"display_name": "Renamed"})},
    # assets
    "/api/v1/assets/": {"GET": api_mine(200),
                        "POST": api_mine(202, body=lambda w: {"file": photo(2)}, format="multipart")},
    "/api/v1/assets/<pk>/": {"GET": api_owned(200, pk="asset"), "DELETE": api_owned(204, pk="asset")},
    "/api/v1/assets/<pk>/file/": {"GET": api_owned(200, pk="asset")},
    "/api/v1/assets/<pk>/thumbnail/": {"GET": api_owned(200, pk="asset")},
    "/api/v1/assets/<pk>/similar/": {"GET": api_owned(200, pk="asset")},
    "/api/v1/assets/<asset_id>/appearances/": {"GET": api_owned(200, asset_id="asset")},
    # jobs
    "/api/v1/jobs/": {"GET": api_mine(200)},
    "/api/v1/jobs/<pk>/": {"GET": api_owned(200, pk="job")},
    "/api/v1/jobs/<pk>/rerun/": {"POST": api_owned(202, pk="job")},
    # faces
    "/api/v1/faces/": {"GET": api_mine(200)},
    "/api/v1/faces/<pk>/": {"GET": api_owned(200, pk="face"),
                            "PATCH": api_owned(200, pk="face", body=lambda w: {"subject": w.subject.pk})},
    "/api/v1/faces/<pk>/crop/": {"GET": api_owned(200, pk="face")},
    "/api/v1/faces/<pk>/similar/": {"GET": api_owned(200, pk="face")},
    "/api/v1/faces/<pk>/reject/": {"POST": api_owned(200, pk="face", body={})},
    "/api/v1/faces/<pk>/dismiss/": {"POST": api_owned(200, pk="face")},
    "/api/v1/faces/<pk>/restore/": {"POST": api_owned(200, pk="dismissed_face")},
    # people
    "/api/v1/subjects/": {"GET": api_mine(200), "POST": api_mine(201, body={"name": "Someone New"})},
    "/api/v1/subjects/<pk>/": {"GET": api_owned(200, pk="subject"),
                               "PATCH": api_owned(200, pk="subject", body={"notes": "harmless"}),
                               "DELETE": api_owned(204, pk="subject")},
    "/api/v1/subjects/<pk>/erasure/": {"GET": api_owned(200, pk="subject")},
    "/api/v1/subjects/<pk>/erase/": {"POST": api_owned(200, pk="subject", body={"confirm": True})},
    "/api/v1/subjects/<pk>/merge/": {
        "POST": api_owned(200, pk="subject", body=lambda w: {"subjects": [w.second_subject.pk]})},
    "/api/v1/subjects/<pk>/examples/": {
        "GET": api_owned(200, pk="subject"),
        "POST": api_owned(201, pk="subject", body=lambda w: {"face_id": w.spare_face.pk})},
    "/api/v1/subjects/<pk>/examples/<face_id>/": {"DELETE": api_owned(204, pk="subject", face_id="face")},
    # appearances
    "/api/v1/appearances/": {"GET": api_mine(200)},
    "/api/v1/appearances/<pk>/": {
        "GET": api_owned(200, pk="appearance"),
        "PATCH": api_owned(200, pk="appearance", body=lambda w: {"subject": w.second_subject.pk})},
    "/api/v1/appearances/<pk>/reject/": {"POST": api_owned(200, pk="appearance", body={})},
    "/api/v1/appearances/<pk>/dismiss/": {"POST": api_owned(200, pk="appearance")},
    "/api/v1/appearances/<pk>/frame/": {"GET": api_owned(200, pk="appearance")},
    # realtime
    "/api/v1/recognize/": {"POST": replace(
        api_mine(400, body={}, format="multipart"),
        why="no object of anyone's: the photo is the body, refused (400) before any work")},
    "/api/v1/verify/": {"POST": Access(True, 401, 404, 200, 200,
                                       body=lambda w: {"face1": w.face.pk, "face2": w.spare_face.pk})},
    # reports
    "/api/v1/reports/": {"GET": api_mine(200)},
    **{f"/api/v1/reports/{name}/": {"GET": api_mine(200)}
       for name in ("daily", "people", "latency", "failures", "summary")},
    # pages
    "/": {"GET": page_mine(200)},
    "/counts/": {"GET": page_mine(200)},
    "/upload/": {"POST": page_mine(200, body=lambda w: {"files": photo(3)},
                                   headers={"HTTP_ACCEPT": "application/json"})},
    "/assets/<asset_id>/": {"GET": page_owned(200, asset_id="asset")},
    "/assets/<asset_id>/rerun/": {"POST": page_owned(302, asset_id="asset")},
    "/faces/<face_id>/assign/": {"POST": page_owned(302, face_id="spare_face",
                                                    body=lambda w: {"subject": w.subject.pk})},
    "/faces/<face_id>/reject/": {"POST": page_owned(302, face_id="face")},
    "/faces/<face_id>/dismiss/": {"POST": page_owned(302, face_id="face")},
    "/faces/<face_id>/restore/": {"POST": page_owned(302, face_id="dismissed_face")},
    "/faces/<face_id>/everywhere/": {"GET": page_owned(200, face_id="face")},
    "/people/": {"GET": page_mine(200), "POST": page_mine(302, body={"name": "Someone New"})},
    "/people/<subject_id>/": {"GET": page_owned(200, subject_id="subject")},
    "/people/<subject_id>/rename/": {"POST": page_owned(302, subject_id="subject", body={"name": "Renamed"})},
    "/people/<subject_id>/hide/": {"POST": page_owned(302, subject_id="subject", body={"hidden": "1"})},
    "/people/<subject_id>/merge/": {"POST": page_owned(302, subject_id="subject",
                                                       body=lambda w: {"into": w.second_subject.pk})},
    "/people/<subject_id>/delete/": {"GET": page_owned(200, subject_id="subject"),
                                     "POST": page_owned(302, subject_id="subject")},
    "/people/<subject_id>/erase/": {"GET": page_owned(200, subject_id="subject"),
                                    "POST": page_owned(302, subject_id="subject")},
    "/people/<subject_id>/photos/": {"POST": page_owned(302, subject_id="subject")},
    "/library/": {"GET": page_mine(200)},
    "/library/duplicates/": {"GET": page_mine(200)},
    "/reports/": {"GET": page_mine(200)},
    "/reports/<report>/": {"GET": replace(page_mine(200), objects={"report": "report"})},
}

# Open to anyone on purpose: (method, what an anonymous client sending nothing gets).
PUBLIC: dict[str, tuple[tuple[str, int], ...]] = {
    "/healthz": (("GET", 200),),
    "/readyz": (("GET", 200),),
    "/favicon.ico": (("GET", 302),),
    "/api/schema/": (("GET", 200),),
    "/api/docs/": (("GET", 200),),
    "/api/v1/auth/register/": (("POST", 400),),
    "/api/v1/auth/token/": (("POST", 400),),
    "/api/v1/auth/token/refresh/": (("POST", 400),),
    "/api/v1/auth/token/verify/": (("POST", 400),),
    "/login/": (("GET", 200), ("POST", 200)),
    "/register/": (("GET", 200), ("POST", 200)),
    "/logout/": (("POST", 302),),
    "/admin/login/": (("GET", 200),),
    "/admin/logout/": (("POST", 302),),
}

# WebSocket routes: the statuses are close codes; "accepted" for a connection that opens.
ACCEPTED = "accepted"
WEBSOCKETS: dict[str, dict] = {
    "/ws/ping/": {"anonymous": CLOSE_UNAUTHENTICATED, "other": ACCEPTED, "owner": ACCEPTED, "staff": ACCEPTED},
    "/ws/jobs/": {"anonymous": CLOSE_UNAUTHENTICATED, "other": ACCEPTED, "owner": ACCEPTED, "staff": ACCEPTED},
    "/ws/jobs/<job_id>/": {"anonymous": CLOSE_UNAUTHENTICATED, "other": CLOSE_NOT_FOUND, "owner": ACCEPTED,
                          "staff": ACCEPTED},
}


# --- Completeness and rules -----------------------------------------------------------------

def test_every_route_and_method_has_an_entry():
    problems = []
    for route in http_routes():
        if is_admin(route) and route.template not in PUBLIC:
            continue  # test_admin_route covers them all
        if route.template in PUBLIC:
            problems += [f"{route.template} is public but does not allow {method}"
                         for method, _ in PUBLIC[route.template] if method not in route.methods]
            continue
        entry = ROUTES.get(route.template)
        if entry is None:
            problems.append(f"{route.template} (name {route.name!r}, {'/'.join(sorted(route.methods))}) has no entry "
                            "in ROUTES: say what anonymous, another user, the owner and staff get there")
            continue
        problems += [f"{route.template} allows {method}, which has no entry in ROUTES"
                     for method in sorted(route.methods - set(entry))]
        problems += [f"{route.template} does not allow {method}, yet ROUTES has an entry for it"
                     for method in sorted(set(entry) - route.methods)]
    known = {route.template for route in http_routes()}
    problems += [f"{template} is in the table but in no URL conf" for template in {*ROUTES, *PUBLIC} - known]
    problems += [f"WebSocket route {template} has no entry in WEBSOCKETS" for template in websocket_routes()
                 if template not in WEBSOCKETS]
    problems += [f"WebSocket entry {template} is in no routing" for template in WEBSOCKETS
                 if template not in websocket_routes()]
    assert not problems, "\n".join(problems)


def test_the_table_keeps_the_rules():
    """Any answer the rules do not give needs a reason written next to it."""
    problems = []
    for template, methods in ROUTES.items():
        for method, access in methods.items():
            if access.why:
                continue
            where = f"{method} {template}"
            if access.anonymous != (401 if access.api else LOGIN):
                problems.append(f"{where}: anonymous must get {401 if access.api else 'the login page'}")
            if not (access.other == 404 or (access.private and access.other == access.owner)):
                problems.append(f"{where}: another user must get 404, or his own things without A's")
            if not all(200 <= status < 400 for status in (access.owner, access.staff)):
                problems.append(f"{where}: the owner and staff must succeed")
    assert not problems, "\n".join(problems)


# --- HTTP cases -----------------------------------------------------------------------------

def url_for(template: str, access: Access, world: World) -> str:
    def value(match):
        thing = getattr(world, access.objects[match.group(1)])
        return str(getattr(thing, "pk", thing))

    url = re.sub(r"<(\w+)>", value, template)
    matched = resolve(url.split("?")[0])
    assert "/" + _readable(matched.route) == template, f"{url} resolves to {matched.route}, not {template}"
    return url


def client_for(role: str, world: World, api: bool):
    user = {"anonymous": None, "other": world.other, "owner": world.owner, "staff": world.staff}[role]
    if api:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def send(client, method: str, url: str, access: Access, world: World):
    body = access.body(world) if callable(access.body) else access.body
    if method == "GET":
        return client.get(url, body or {}, **access.headers)
    if access.api:
        return client.generic(method, url, **access.headers) if body is None else \
            getattr(client, method.lower())(url, body, format=access.format, **access.headers)
    return getattr(client, method.lower())(url, body or {}, **access.headers)


def numbers_in(value, skip=("filters",)):
    """Every number of a JSON body (a report's echo of its own filters aside)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                yield from numbers_in(item, skip)
    elif isinstance(value, list):
        for item in value:
            yield from numbers_in(item, skip)


def text_of(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace")


def assert_shows_nothing_of(world: World, response, text: str, where: str, listing: bool):
    """No text of A's appears; B owns nothing, so what he lists is empty and his counts are 0."""
    leaked = [marker for marker in world.markers() if marker in text]
    assert not leaked, f"{where}: another user sees {leaked}"
    if listing and response.get("Content-Type", "").startswith("application/json"):
        body = json.loads(text)
        if isinstance(body, dict) and "results" in body:
            assert body["results"] == [], f"{where}: another user's list has rows: {body['results']}"
        if isinstance(body, dict) and ("rows" in body or "photos" in body):  # a report, the dashboard's counts
            assert not any(numbers_in(body)), f"{where}: another user's numbers count A's things: {body}"


def cases():
    return [pytest.param(template, method, role, id=f"{method} {template} {role}")
            for template, methods in ROUTES.items() for method in methods for role in ROLES]


@pytest.mark.parametrize(("template", "method", "role"), cases())
def test_route(world, template, method, role):
    access = ROUTES[template][method]
    url = url_for(template, access, world)
    before = snapshot(world.owner)

    response = send(client_for(role, world, access.api), method, url, access, world)

    expected = getattr(access, role)
    where = f"{role}: {method} {url}"
    text = text_of(response)
    detail = text[:300]
    if expected == LOGIN:
        assert response.status_code == 302, f"{where} answered {response.status_code}: {detail}"
        assert response["Location"].startswith("/login/?next="), f"{where} went to {response['Location']}"
    else:
        assert response.status_code == expected, f"{where} answered {response.status_code}: {detail}"
    if role in ("anonymous", "other"):
        assert snapshot(world.owner) == before, f"{where} changed A's data"
    if access.api and response.status_code >= 400:
        assert json.loads(text)["status"] == response.status_code, f"{where}: not the API's error body"
    if role == "other":
        assert_shows_nothing_of(world, response, text, where, listing=method == "GET")


@pytest.mark.parametrize(("template", "method", "status"),
                         [(template, method, status) for template, answers in PUBLIC.items()
                          for method, status in answers])
def test_public_route(template, method, status):
    response = getattr(Client(), method.lower())(template)
    assert response.status_code == status, response.content[:300]


# --- B naming A's things in his own requests ------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """B's request about his own things (or none) that names one of A's in the query or body."""

    api: bool
    method: str
    url: Callable[[World, dict], str]
    status: int
    body: Callable[[World, dict], dict] | None = None


PROBES = {
    "assets listed by A's person": Probe(True, "GET", lambda w, b: f"/api/v1/assets/?subject={w.subject.pk}", 200),
    "faces listed by A's photo": Probe(True, "GET", lambda w, b: f"/api/v1/faces/?asset={w.asset.pk}", 200),
    "faces listed by A's person": Probe(True, "GET", lambda w, b: f"/api/v1/faces/?subject={w.subject.pk}", 200),
    "jobs listed by A's photo": Probe(True, "GET", lambda w, b: f"/api/v1/jobs/?asset={w.asset.pk}", 200),
    "appearances by A's photo": Probe(True, "GET", lambda w, b: f"/api/v1/appearances/?asset={w.asset.pk}", 200),
    "appearances by A's person": Probe(True, "GET", lambda w, b: f"/api/v1/appearances/?subject={w.subject.pk}",
                                       200),
    "report of A's person": Probe(True, "GET", lambda w, b: f"/api/v1/reports/people/?person={w.subject.pk}", 404),
    # Documented: naming another owner is refused as staff-only (403), not shown as one's own numbers.
    "report of A": Probe(True, "GET", lambda w, b: f"/api/v1/reports/daily/?owner={w.owner.pk}", 403),
    "new person from A's face": Probe(True, "POST", lambda w, b: "/api/v1/subjects/", 404,
                                      lambda w, b: {"name": "Mine now", "face": w.face.pk}),
    "own face named as A's person": Probe(True, "PATCH", lambda w, b: f"/api/v1/faces/{b['face'].pk}/", 400,
                                          lambda w, b: {"subject": w.subject.pk}),
    "own face: not A's person": Probe(True, "POST", lambda w, b: f"/api/v1/faces/{b['face'].pk}/reject/", 404,
                                      lambda w, b: {"subject": w.subject.pk}),
    "A's person merged into own": Probe(True, "POST", lambda w, b: f"/api/v1/subjects/{b['subject'].pk}/merge/", 404,
                                        lambda w, b: {"subjects": [w.subject.pk]}),
    "A's face enrolled into own": Probe(True, "POST", lambda w, b: f"/api/v1/subjects/{b['subject'].pk}/examples/",
                                        400, lambda w, b: {"face_id": w.face.pk}),
    "A's example removed from own": Probe(
        True, "DELETE", lambda w, b: f"/api/v1/subjects/{b['subject'].pk}/examples/{w.face.pk}/", 404),
    "page: own face named as A's person": Probe(False, "POST", lambda w, b: f"/faces/{b['face'].pk}/assign/", 400,
                                                lambda w, b: {"subject": w.subject.pk}),
    "page: own person merged into A's": Probe(False, "POST", lambda w, b: f"/people/{b['subject'].pk}/merge/", 302,
                                              lambda w, b: {"into": w.subject.pk}),
    "page: library by A's person": Probe(False, "GET", lambda w, b: f"/library/?person={w.subject.pk}", 400),
    "page: report of A's person": Probe(False, "GET", lambda w, b: f"/reports/people/?person={w.subject.pk}", 404),
    "page: report of A": Probe(False, "GET", lambda w, b: f"/reports/daily/?owner={w.owner.pk}", 403),
}


@pytest.mark.parametrize("probe", [pytest.param(probe, id=name) for name, probe in PROBES.items()])
def test_another_users_ids_in_queries_and_bodies(world, probe):
    bobs_asset = stored_asset(world.other, jpeg_bytes(seed=9), "bob.jpg")
    bobs = {"face": make_face(bobs_asset, embedding=unit_vector(4)),
            "subject": Subject.objects.create(owner=world.other, name="Bob's Friend")}
    url = probe.url(world, bobs)
    access = Access(probe.api, 0, 0, 0, 0, body=probe.body and (lambda w: probe.body(w, bobs)))
    before = snapshot(world.owner)

    response = send(client_for("other", world, probe.api), probe.method, url, access, world)

    text = text_of(response)
    assert response.status_code == probe.status, f"{probe.method} {url} answered {response.status_code}: {text[:300]}"
    assert snapshot(world.owner) == before, f"{probe.method} {url} changed A's data"
    assert_shows_nothing_of(world, response, text, f"{probe.method} {url}", listing=probe.method == "GET")


# --- The admin site -------------------------------------------------------------------------

ADMIN_SAMPLES = {"content_type_id": "content_type", "app_label": "recognition", "url": "no-such-page/",
                 "queue_index": "0", "scheduler_index": "0", "connection_index": "0", "job_id": "no-such-job",
                 "result_id": "no-such-result", "key": "no-such-worker", "scheduler_name": "no-such-scheduler",
                 "cron_job_name": "no-such-cron-job", "token": "notTheToken", "id": "owner"}
# django_rq's stats for monitoring answer 401 with a JSON refusal, not the login page, unless staff
# or RQ_API_TOKEN (unset: no token opens them).
ADMIN_JSON = {"/admin/django_rq/dashboard/stats.json/?", "/admin/django_rq/dashboard/stats.json/<token>/?"}
# Where a staff member's GET is not checked: django_rq's own failures (500) on what a test cannot
# supply. Anyone else is still checked to be sent to the login page there.
ADMIN_STAFF_UNCHECKED = {
    "/admin/django_rq/dashboard/workers/<queue_index>/<key>/": "needs a live worker's key",
    "/admin/django_rq/dashboard/schedulers/<scheduler_index>/": "needs rq-scheduler, which Sightline does not use",
    **{f"/admin/django_rq/dashboard/<object_id>/{view}/": "django_rq's placeholder model has no table"
       for view in ("change", "delete", "history")},
}


def admin_url(route: Route, world: World, rq_job_id: str) -> str:
    samples = {**ADMIN_SAMPLES, "content_type": str(ContentType.objects.get_for_model(Asset).pk),
               "owner": str(world.owner.pk), "object_id": str(world.asset.pk), "job_id": rq_job_id}
    # object_id: a row of the model the route is for, when it has one
    if route.name and (model := re.match(r"admin:(\w+?)_(\w+)_(?:change|delete|history)$", route.name)):
        objects = {"accounts_user": world.owner, "recognition_face": world.face, "recognition_job": world.job,
                   "recognition_subject": world.subject, "media_asset": world.asset}
        thing = objects.get(f"{model.group(1)}_{model.group(2)}")
        samples["object_id"] = str(thing.pk) if thing else "1"
    url = re.sub(r"<(\w+)>", lambda m: samples[m.group(1)], route.template).removesuffix("?")
    assert "/" + _readable(resolve(url).route) == route.template, f"{url} resolves to {resolve(url).route}"
    return url


def admin_routes():
    return [pytest.param(route, id=route.template) for route in http_routes()
            if is_admin(route) and route.template not in PUBLIC]


@pytest.fixture
def rq_job_id():
    """A real job in the first queue, for the rq dashboard's job pages; gone afterwards."""
    import django_rq

    job = django_rq.get_queue(settings.RQ_QUEUE_NAMES[0]).enqueue(len, [])
    yield job.id
    job.delete()


@pytest.mark.parametrize("route", admin_routes())
def test_admin_route(world, rq_job_id, route):
    """Django's admin_view guards the whole site: anyone not staff is sent to its login page."""
    url = admin_url(route, world, rq_job_id)
    before = snapshot(world.owner)
    for role in ("anonymous", "other"):
        for method in ("GET", "POST"):
            response = getattr(client_for(role, world, api=False), method.lower())(url)
            where = f"{role}: {method} {url}"
            if route.template in ADMIN_JSON:
                assert response.status_code == 401 and not any(numbers_in(response.json())), where
            else:
                assert response.status_code == 302, f"{where} answered {response.status_code}"
                assert response["Location"].startswith(f"{ADMIN_LOGIN}?next="), f"{where} → {response['Location']}"
    assert snapshot(world.owner) == before, f"{url} was refused, yet changed A's data"
    if route.template in ADMIN_STAFF_UNCHECKED:
        return
    response = client_for("staff", world, api=False).get(url)
    assert response.status_code < 500, f"staff: GET {url} answered {response.status_code}"
    assert not response.get("Location", "").startswith(ADMIN_LOGIN), f"staff: GET {url} was sent to log in"


# --- WebSockets -----------------------------------------------------------------------------

def websocket_cases():
    return [pytest.param(template, role, id=f"{template} {role}") for template in WEBSOCKETS for role in ROLES]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("template", "role"), websocket_cases())
async def test_websocket_route(user, other_user, staff_user, settings, tmp_path, template, role):
    from config.asgi import application

    settings.MEDIA_ROOT = tmp_path
    world = await sync_to_async(build_world)(user, other_user, staff_user)
    path = template.replace("<job_id>", str(world.job.pk))
    someone = {"anonymous": None, "other": other_user, "owner": user, "staff": staff_user}[role]
    if someone is not None:
        path += f"?token={await sync_to_async(lambda: str(RefreshToken.for_user(someone).access_token))()}"
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])

    connected, code = await communicator.connect(timeout=5)

    expected = WEBSOCKETS[template][role]
    if expected != ACCEPTED:
        assert (connected, code) == (False, expected)
        return
    assert connected, f"{role} was refused ({code}) on {path}"
    received = []
    while not await communicator.receive_nothing(timeout=0.3):
        received.append(await communicator.receive_json_from())
    await communicator.disconnect()
    jobs = {message.get("job") for message in received}
    if role == "other":
        assert world.job.pk not in jobs and not any(m in json.dumps(received) for m in world.markers()), received
    elif template.startswith("/ws/jobs/"):
        assert world.job.pk in jobs, f"{role} was not sent the job's state: {received}"
