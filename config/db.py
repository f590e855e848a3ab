"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router
from django.db.models.functions import Cast


def update_rows(objs: Sequence[models.Model], fields: Sequence[str], batch_size: int = 500) -> int:
    """Save ``fields`` of ``objs`` (saved instances of one model), as ``bulk_update`` does, except
    that a value every row of a batch shares is written once (``SET field = value``) instead of
    as a CASE with a branch per row. Django builds every branch as an expression, about 0.15 ms
    of CPU each: advancing a batch of 8 jobs (8 fields) took 8 ms that way against 2 ms, and a
    correction gives hundreds of faces the same person. Returns the number of rows updated.
    """
    if not objs:
        return 0
    model = type(objs[0])
    db = router.db_for_write(model)
    # PostgreSQL types a CASE of parameters as text: cast back, as bulk_update does.
    cast = connections[db].features.requires_casted_case_in_updates
    meta_fields = [model._meta.get_field(name) for name in fields]
    updated = 0
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        changes = {}
        for field in meta_fields:
            values = [getattr(obj, field.attname) for obj in batch]
            if _all_equal(values):
                changes[field.attname] = values[0]
            else:
                case = models.Case(
                    *(models.When(pk=obj.pk, then=models.Value(value, output_field=field))
                      for obj, value in zip(batch, values)),
                    output_field=field,
                )
                changes[field.attname] = Cast(case, output_field=field) if cast else case
        updated += model._base_manager.using(db).filter(pk__in=[obj.pk for obj in batch]).update(**changes)
    return updated


def _all_equal(values: list) -> bool:
    first = values[0]
    try:
        return all(value is first or (type(value) is type(first) and bool(value == first)) for value in values)
    except (TypeError, ValueError):  # arrays (embeddings) compare element by element: written per row
        return False
