import pytest
from django.db import connection


@pytest.mark.django_db
def test_pgvector_extension_is_installed_in_the_test_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
        assert row is not None, "pgvector extension missing"
        cursor.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        assert cursor.fetchone()[0] == pytest.approx(1.0)


@pytest.mark.django_db
def test_database_is_postgresql_not_sqlite():
    assert connection.vendor == "postgresql"
    assert connection.settings_dict["NAME"].startswith("test_")
