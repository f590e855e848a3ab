"""Sightline's inference engine: plain PyTorch/numpy, no Django.

Public names are imported lazily (PEP 562) so that importing the package, or any one of its
modules, loads no weights and does not pull in torchvision until a class is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .face_engine import DetectedFace, FaceEngine
    from .tagger import ImageTagger
    from .tracker import SampledFace, Track, TrackerConfig, sampled_faces, scene_cuts, track_faces

__all__ = ["DetectedFace", "FaceEngine", "ImageTagger", "SampledFace", "Track", "TrackerConfig", "sampled_faces",
           "scene_cuts", "track_faces"]

_HOMES = {"DetectedFace": ".face_engine", "FaceEngine": ".face_engine", "ImageTagger": ".tagger",
          **dict.fromkeys(("SampledFace", "Track", "TrackerConfig", "sampled_faces", "scene_cuts", "track_faces"),
                         ".tracker")}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
