"""Local media storage that fails cleanly when the disk is full.

Django's ``FileSystemStorage`` writes straight into the final name, so a write that fails
midway (no space left, quota exceeded) leaves a partial file that no row names and nobody
reads. Here a file is written under a temporary name in its folder and linked into place only
when complete; on failure the temporary file is removed, and a full disk becomes a
``StorageFull`` refusal (507) that uploads answer with and jobs fail with.
"""

from __future__ import annotations

import errno
import os
import tempfile

from django.core.files.storage import FileSystemStorage
from django.core.files.utils import validate_file_name

from config.refusals import Refusal

# A full disk or an exhausted quota: the operator must free space; retrying at once cannot help.
NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class StorageFull(Refusal):
    code = "storage_full"
    status = 507

    def __init__(self, message: str = "The media storage is full; nothing was stored. "
                                      "Try again once an administrator has freed space.", **kwargs):
        super().__init__(message, **kwargs)


class LocalStorage(FileSystemStorage):
    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=directory, prefix=".partial-")
        except OSError as exc:
            raise _refusal_or(exc) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            # mkstemp makes it 0600; Django's FILE_UPLOAD_PERMISSIONS (0644 by default) applies.
            os.chmod(partial, self.file_permissions_mode if self.file_permissions_mode is not None else 0o644)
            while True:
                try:
                    os.link(partial, full_path)  # never replaces a file: a name taken meanwhile gets a new one
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    validate_file_name(name, allow_relative_path=True)
                    full_path = self.path(name)
        except OSError as exc:
            raise _refusal_or(exc) from exc
        finally:
            try:
                os.unlink(partial)
            except FileNotFoundError:
                pass
        self._ensure_location_group_id(full_path)
        return os.path.relpath(full_path, self.location).replace("\\", "/")


def _refusal_or(exc: OSError) -> Exception:
    return StorageFull() if exc.errno in NO_SPACE_ERRNOS else exc
