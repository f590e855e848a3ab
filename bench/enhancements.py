"""Does each enhancement help recognition? Distances to the enrolled Obama gallery faces.

For each configuration the gallery (gallery/obama/*) is enrolled and the probes analysed
with that same configuration, as the product would. Reported per probe: the smallest
distance from its biggest face to the enrolled Obama faces (lower is better; same person
below 0.6), and the margin to the nearest other enrolled person (higher is better).

The probes are the resolution ladder obama-240p/480p/720p/1080p and obama_small, plus
synthetically darkened copies (x → 255·(x/255)^2.2·0.6, an under-exposed shot) because the
shared photos have no low-light example. Usage: .venv/bin/python bench/enhancements.py
"""

from __future__ import annotations

import numpy as np
import torch

from shared_faces import faces_dir, gallery_photos, load_rgb

from recognition.engine import FaceEngine
from recognition.engine.enhance import EnhanceConfig

PROBES = ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg",
          "obama_small.jpg"]
CONFIGS = {
    "none": EnhanceConfig(low_light=False),
    "low-light gamma": EnhanceConfig(low_light=True),
    "upscale <480 px": EnhanceConfig(low_light=False, upscale_below=480),
    "bicubic small faces": EnhanceConfig(low_light=False, small_face_bicubic=True),
    "all three": EnhanceConfig(low_light=True, upscale_below=480, small_face_bicubic=True),
}


def darken(image: np.ndarray) -> np.ndarray:
    return (255.0 * (image / 255.0) ** 2.2 * 0.6).round().astype(np.uint8)


def probe_set(root) -> dict[str, np.ndarray]:
    images = {name: load_rgb(root / "probes" / name) for name in PROBES}
    images.update({f"dark {name}": darken(image) for name, image in list(images.items())})
    return images


def measure(engine: FaceEngine, gallery, probes) -> dict[str, tuple[float, float]]:
    """probe → (distance to Obama, margin to the nearest other person)."""
    people = [p.subjects[0] for p in gallery]
    enrolled = engine.analyze([load_rgb(p.path) for p in gallery])
    matrix = np.stack([faces[0].embedding for faces in enrolled])
    obama = np.array([p == "obama" for p in people])
    results = {}
    for name, faces in zip(probes, engine.analyze(list(probes.values()))):
        if not faces:
            results[name] = (float("nan"), float("nan"))
            continue
        distances = np.linalg.norm(matrix - faces[0].embedding, axis=1)
        results[name] = (distances[obama].min(), distances[~obama].min() - distances[obama].min())
    return results


def main() -> None:
    torch.set_num_threads(2)
    root = faces_dir()
    gallery = gallery_photos(root)
    probes = probe_set(root)
    table = {label: measure(FaceEngine(device="cpu", enhancement=config), gallery, probes)
             for label, config in CONFIGS.items()}
    labels = list(CONFIGS)
    print("| probe | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name in probes:
        cells = [f"{table[label][name][0]:.3f} ({table[label][name][1]:+.2f})" for label in labels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for subset, keep in (("ladder", lambda n: not n.startswith("dark")),
                         ("darkened", lambda n: n.startswith("dark"))):
        means = [np.mean([table[label][n][0] for n in probes if keep(n)]) for label in labels]
        print(f"| mean, {subset} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    print("\nCells: distance to the enrolled Obama faces (margin to the nearest other person).")


if __name__ == "__main__":
    main()
