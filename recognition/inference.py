"""The models of a worker process: loaded once, on first use, and kept.

Only rq workers call these; web processes never load models (ARCHITECTURE.md).
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def face_engine():
    from recognition.engine import FaceEngine

    engine = FaceEngine(device=settings.SIGHTLINE_DEVICE)
    logger.info("face engine loaded", extra={"device": str(engine.device), "model_version": engine.model_version})
    return engine


@functools.lru_cache(maxsize=1)
def image_tagger():
    from recognition.engine import ImageTagger

    return ImageTagger(device=settings.SIGHTLINE_DEVICE)
