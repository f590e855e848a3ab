"""Signals recognition sends for others to follow (recognition imports none of its followers).

``people_changed(owner_id)``: a person decided something about faces or people (a name, "not
this person", "not a face", a merge, a rename, an erasure), sent once the change is committed.
Corrections write many faces at once with queryset updates, which send no ``post_save``.
"""

from django.db import transaction
from django.dispatch import Signal

people_changed = Signal()


def send_people_changed(owner_id: int) -> None:
    transaction.on_commit(lambda: people_changed.send(sender=None, owner_id=owner_id))
