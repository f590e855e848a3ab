import pytest


def test_healthz_answers_without_touching_servers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_check_when_everything_is_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "redis": True,
    }


@pytest.mark.django_db
def test_readyz_reports_workers_with_models_but_stays_ready_without_them(client, settings):
    """A web-only deployment still serves pages and takes uploads (they wait queued)."""
    import redis

    from recognition.worker import model_worker_keys

    client_ = redis.Redis.from_url(settings.REDIS_URL)
    serving = len(model_worker_keys(client_))  # a worker another test left running, if any
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["workers"]["count"] == serving and body["workers"]["ok"] is (serving > 0)


@pytest.mark.django_db
def test_readyz_is_503_and_names_redis_when_redis_is_unreachable(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'no-redis-here.sock'}?db=0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "redis unreachable" in body["message"]


@pytest.mark.django_db
def test_readyz_is_503_when_a_migration_is_pending(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets: [(self.loader.graph.nodes[("accounts", "0001_initial")], False)],
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "unapplied migration" in response.json()["checks"]["migrations"]["error"]


def test_unknown_api_url_answers_json_not_html(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["message"] == "Not found."
