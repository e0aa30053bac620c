"""Lets the VOT toolkit drive our trackers over the TraX protocol (optional: vot-trax).

In the VOT workspace's ``trackers.ini``::

    [clnet]
    label = CLNet (JAX)
    protocol = traxpython
    command = import clnet_jax.evaluate.vot_integration as v; v.main('clnet_r50', 'weights/r50')
    paths = /path/to/clnet_jax

Each TraX request is handled by :func:`handle`, a plain function of the request's kind,
image path and region, so the protocol logic is testable without a VOT client.
"""
from __future__ import annotations

import numpy as np

from clnet_jax import config as config_lib
from clnet_jax.evaluate.vot import region_to_rect
from clnet_jax.track import runner
from clnet_jax.track.inputs import read_frame


def region_to_box(region_points) -> np.ndarray:
    """A TraX region (rectangle bounds or polygon points) -> x, y, w, h."""
    pts = np.asarray(region_points, np.float64).ravel()
    return pts if len(pts) == 4 else region_to_rect(pts[:8] if len(pts) >= 8 else pts)


def handle(tracker: runner.SequenceTracker, kind: str, image_path: str, region=None):
    """'initialize' (with a region) or 'frame' -> the x, y, w, h box to report."""
    frame = read_frame(image_path)
    if kind == "initialize":
        box = region_to_box(region)
        tracker.init(frame, box)
        return box
    if kind == "frame":
        return tracker.update(frame)[0]
    raise ValueError(f"unexpected TraX request {kind!r}")


def _points(region) -> list[float]:
    import trax
    if region.type == trax.Region.RECTANGLE:
        return list(region.bounds())
    return [c for p in region for c in p]


def main(config_path: str, checkpoint_dir: str) -> None:
    """Serves one TraX session (called by the VOT toolkit)."""
    import trax
    cfg = config_lib.from_file(config_path)
    tracker = runner.SequenceTracker(cfg, runner.load_params(cfg, checkpoint_dir))
    with trax.Server([trax.Region.RECTANGLE, trax.Region.POLYGON], [trax.Image.PATH],
                     tracker_name=cfg.name) as server:
        while True:
            request = server.wait()
            if request.type == trax.TraxStatus.QUIT:
                break
            path = request.image[trax.ImageChannel.COLOR].path()
            region = _points(request.objects[0][0]) if request.type == trax.TraxStatus.INITIALIZE else None
            box = handle(tracker, request.type, path, region)
            server.status([(trax.Rectangle.create(*[float(v) for v in box]), {})])
