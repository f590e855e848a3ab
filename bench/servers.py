"""What every benchmark that runs Sightline does first: start its own embedded PostgreSQL and
Redis (under ``SIGHTLINE_DATA_DIR``, which the script sets before importing this), set Django up
and apply the migrations; and stop the servers afterwards, whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sightline_on_own_servers() -> Iterator[None]:
    from config import embedded

    servers = embedded.ensure_running()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield
    finally:
        servers.stop()
