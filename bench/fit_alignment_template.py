"""Fit align.MTCNN_TEMPLATE so our chips frame faces the way dlib's chips do.

For every face of the shared gallery+probe photos found by both dlib (HOG + 5-point shape
predictor, the face_recognition pipeline) and our MTCNN, dlib gives the exact map from image
to its 150×150 chip (get_face_chip_details with padding 0.25). The template is the
least-squares solution for where MTCNN's five landmarks sit in dlib's chips: the mean of
each face's landmarks mapped through dlib's image→chip transform. For comparison the script
also fits the five points freely (L-BFGS) so that, per face, the similarity fitted from
MTCNN's landmarks sends a grid of chip pixels to the image spots dlib's chip reads them from,
and checks both on held-out faces (fitted on gallery faces, tested on probe faces).

It then reports, with dlib's own descriptor on both chips, the embedding distance between
our chip and dlib's chip of the same face, and checks our resampler by cutting dlib's
framing with it. Usage: .venv/bin/python bench/fit_alignment_template.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from shared_faces import (DlibPipeline, centre_of_shape, faces_dir, gallery_photos, load_rgb,
                          match_boxes, probe_photos)

from recognition.engine import align
from recognition.engine.detector import MTCNNDetector

GRID_STEPS = 7  # 7×7 chip pixels spread over the chip drive the fit


def collect(dlib_pipeline: DlibPipeline, detector: MTCNNDetector, photos):
    """Per matched face: image index, MTCNN landmarks, dlib image→chip map, dlib shape."""
    images = [load_rgb(p.path) for p in photos]
    detections = detector.detect(images)
    faces = []
    for index, (image, found) in enumerate(zip(images, detections)):
        shapes = dlib_pipeline.shapes(image)
        if not shapes or len(found) == 0:
            continue
        centres = np.array([centre_of_shape(s) for s in shapes])
        for shape, match in zip(shapes, match_boxes(centres, found.boxes)):
            if match is not None:
                faces.append((index, found.landmarks[match], dlib_pipeline.image_to_chip(shape),
                              shape))
    return images, faces


def chip_grid() -> torch.Tensor:
    steps = torch.linspace(0, align.CHIP_SIZE - 1, GRID_STEPS, dtype=torch.float64)
    v, u = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([u.flatten(), v.flatten(), torch.ones(GRID_STEPS ** 2,
                                                            dtype=torch.float64)], dim=1)


def residuals(template: torch.Tensor, landmarks: torch.Tensor, dlib_maps: torch.Tensor,
              grid: torch.Tensor) -> torch.Tensor:
    """Where our chip pixels land in dlib's chip, minus where they should: (N, G, 2)."""
    ours = align.chip_to_image(landmarks, template)  # chip → image
    in_image = grid @ ours.transpose(1, 2)
    in_dlib_chip = torch.cat([in_image, torch.ones_like(in_image[..., :1])], dim=2) \
        @ dlib_maps.transpose(1, 2)
    return in_dlib_chip - grid[None, :, :2]


def mean_landmarks_in_dlib_chip(landmarks: torch.Tensor, dlib_maps: torch.Tensor) -> torch.Tensor:
    """Closed-form least squares: the points nearest all MTCNN landmarks mapped into dlib chips."""
    homogeneous = torch.cat([landmarks, torch.ones_like(landmarks[..., :1])], dim=2)
    return (homogeneous @ dlib_maps.transpose(1, 2)).mean(dim=0)


def fit(landmarks: torch.Tensor, dlib_maps: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    start = mean_landmarks_in_dlib_chip(landmarks, dlib_maps)
    grid = chip_grid()
    template = start.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([template], max_iter=500, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def loss_fn():
        optimiser.zero_grad()
        loss = residuals(template, landmarks, dlib_maps, grid).pow(2).sum(dim=2).mean()
        loss.backward()
        return loss

    with torch.no_grad():
        rms_start = residuals(start, landmarks, dlib_maps, grid).pow(2).sum(2).mean().sqrt()
    optimiser.step(loss_fn)
    with torch.no_grad():
        rms_end = residuals(template, landmarks, dlib_maps, grid).pow(2).sum(2).mean().sqrt()
    return template.detach(), float(rms_start), float(rms_end)


def chip_distances(dlib_pipeline, images, faces, transforms: torch.Tensor) -> np.ndarray:
    """Descriptor distance between a chip cut with `transforms` and dlib's chip, per face."""
    distances = []
    for (index, _, _, shape), transform in zip(faces, transforms):
        image = align.image_tensor(images[index], torch.device("cpu"))
        ours = align.chips_to_uint8(align.align_faces(image, None, transforms=transform[None].float()))[0]
        theirs = dlib_pipeline.chip(images[index], shape)
        distances.append(np.linalg.norm(dlib_pipeline.embed_chip(ours)
                                        - dlib_pipeline.embed_chip(theirs)))
    return np.array(distances)


def main() -> None:
    torch.set_num_threads(2)
    root = faces_dir()
    photos = gallery_photos(root) + probe_photos(root)
    dlib_pipeline = DlibPipeline()
    detector = MTCNNDetector(torch.device("cpu"))
    started = time.perf_counter()
    images, faces = collect(dlib_pipeline, detector, photos)
    landmarks = torch.tensor(np.array([f[1] for f in faces]), dtype=torch.float64)
    dlib_maps = torch.tensor(np.array([f[2] for f in faces]), dtype=torch.float64)
    template, rms_start, rms_end = fit(landmarks, dlib_maps)
    print(f"faces matched between dlib and MTCNN: {len(faces)} in {len(photos)} photos")
    print(f"chip-pixel RMS misplacement: mean-landmark start {rms_start:.3f}, fitted {rms_end:.3f}")
    print("free grid-fitted template =", np.array2string(template.numpy(), precision=4, separator=", "))

    dlib_framing = align.invert_similarities(dlib_maps)  # dlib's own chip → image maps
    resampler = chip_distances(dlib_pipeline, images, faces, dlib_framing)
    ours = chip_distances(dlib_pipeline, images, faces,
                          align.chip_to_image(landmarks, template.to(torch.float64)))
    mean_template = mean_landmarks_in_dlib_chip(landmarks, dlib_maps)
    print("mean-landmark template =", np.array2string(mean_template.numpy(), precision=4, separator=", "))
    mean_d = chip_distances(dlib_pipeline, images, faces, align.chip_to_image(landmarks, mean_template))
    print(f"dlib descriptor distance, our chip (mean-landmark template) vs dlib chip: "
          f"mean {mean_d.mean():.4f} max {mean_d.max():.4f}")
    gallery = torch.tensor([photos[f[0]].kind == "gallery" for f in faces])
    for name, fitter in (("grid", lambda l, m: fit(l, m)[0]), ("mean", mean_landmarks_in_dlib_chip)):
        held = fitter(landmarks[gallery], dlib_maps[gallery])
        d = chip_distances(dlib_pipeline, images, [f for f, g in zip(faces, gallery) if not g],
                           align.chip_to_image(landmarks[~gallery], held))
        print(f"held-out ({name} template fitted on {int(gallery.sum())} gallery faces, "
              f"tested on {int((~gallery).sum())} probe faces): mean {d.mean():.4f} max {d.max():.4f}")
    current = chip_distances(dlib_pipeline, images, faces,
                             align.chip_to_image(landmarks.float()).double())
    print(f"dlib descriptor distance, our resampler on dlib's framing vs dlib chip: "
          f"mean {resampler.mean():.4f} max {resampler.max():.4f}")
    print(f"dlib descriptor distance, our chip (free grid-fitted template) vs dlib chip: "
          f"mean {ours.mean():.4f} max {ours.max():.4f}")
    print(f"dlib descriptor distance, our chip (committed align.MTCNN_TEMPLATE) vs dlib chip: "
          f"mean {current.mean():.4f} max {current.max():.4f}")
    print(f"({time.perf_counter() - started:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
