"""The synthetic room's camera: a pinhole camera 0.8 m above a flat floor, horizon at 40% of the
image height, a far wall at 14 m; and the background (floor and wall) it sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Camera and room (see the module docstring).
FOCAL_FRAC = 0.8  # focal length in px as a share of the image width (~64 degree horizontal FOV)
CAMERA_HEIGHT_M = 0.8
HORIZON_FRAC = 0.4
WALL_DEPTH_M = 14.0


@dataclass(frozen=True)
class Camera:
    width: int
    height: int

    @property
    def focal(self) -> float:
        return FOCAL_FRAC * self.width

    @property
    def horizon(self) -> float:
        return HORIZON_FRAC * self.height

    def foot_y(self, z: float) -> float:
        """Image row where the floor is at depth ``z``."""
        return self.horizon + self.focal * CAMERA_HEIGHT_M / z

    def background_depth(self) -> np.ndarray:
        """Floor (ground plane) below the wall line, the far wall above it; float32 (H, W)."""
        ys = np.arange(self.height, dtype=np.float64) + 0.5
        below = ys - self.horizon
        with np.errstate(divide="ignore"):
            floor = np.where(
                below > 0, self.focal * CAMERA_HEIGHT_M / np.maximum(below, 1e-9), np.inf
            )
        col = np.minimum(floor, WALL_DEPTH_M).astype(np.float32)
        return np.repeat(col[:, None], self.width, axis=1)


def background(cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """Wall and floor colour gradients with a mild noise texture, uint8 (H, W, 3)."""
    h, w = cam.height, cam.width
    wall_line = cam.foot_y(WALL_DEPTH_M)
    t = (np.arange(h, dtype=np.float32) / h)[:, None]
    wall = np.asarray(rng.integers(170, 225, 3), np.float32)
    floor = np.asarray(rng.integers(80, 140, 3), np.float32) * np.asarray(
        [1.0, 0.8, 0.6], np.float32
    )
    rows = np.where(t * h < wall_line, wall * (1.0 - 0.25 * t), floor * (0.7 + 0.5 * t))
    img = np.repeat(rows[:, None, :], w, axis=1)
    img += rng.integers(-6, 7, size=(h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)

