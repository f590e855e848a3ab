"""Reports cached in Redis (Django's cache) for ``SIGHTLINE_REPORT_CACHE_SECONDS``, invalidated by
version numbers instead of deletes.

Every owner has a version key, and everyone's reports share a global one. A cached report's key
holds the version of its scope (the owner's, or the global one for staff looking at everyone),
so bumping a version makes every cached report of that scope unreachable at once, without
having to find its keys; the orphans expire with their TTL. ``signals`` bumps the owner's and
the global version when a job of the owner finishes and when a person decides something about
a face or a person.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from analysis.filters import ReportFilters

GLOBAL = "all"
# Versions outlive cached reports by far: a version that expired and restarted at 1 could
# meet a report still cached under an old 1.
VERSION_TTL_SECONDS = 7 * 24 * 3600


def _version_key(scope) -> str:
    return f"analysis:version:{scope}"


def version(scope) -> int:
    return cache.get_or_set(_version_key(scope), 1, VERSION_TTL_SECONDS)


def bump(owner_id: int) -> None:
    """Every cached report of ``owner_id``, and every all-owner report, is stale from now."""
    for scope in (owner_id, GLOBAL):
        key = _version_key(scope)
        try:
            cache.incr(key)
        except ValueError:  # never asked for yet, or expired: anything new beats old entries
            cache.set(key, int(time.time()), VERSION_TTL_SECONDS)
        else:
            cache.touch(key, VERSION_TTL_SECONDS)


def report_key(name: str, filters: ReportFilters) -> str:
    scope = filters.owner_id if filters.owner_id is not None else GLOBAL
    digest = hashlib.sha256(filters.cache_part().encode()).hexdigest()[:24]
    return f"analysis:report:{name}:{scope}:v{version(scope)}:{digest}"


@dataclass(frozen=True)
class CachedRows:
    rows: list[dict]
    hit: bool


def cached(name: str, filters: ReportFilters, compute) -> CachedRows:
    """``compute()``'s rows from the cache when fresh, else computed and stored."""
    ttl = settings.SIGHTLINE_REPORT_CACHE_SECONDS
    if ttl <= 0:
        return CachedRows(compute(), False)
    key = report_key(name, filters)
    rows = cache.get(key)
    if rows is not None:
        return CachedRows(rows, True)
    rows = compute()
    cache.set(key, rows, ttl)
    return CachedRows(rows, False)
