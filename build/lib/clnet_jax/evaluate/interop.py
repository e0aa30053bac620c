"""Adapters for other toolkits: ``got10k.experiments`` drives our trackers through this."""
from __future__ import annotations

import numpy as np

from clnet_jax.track import runner


def got10k_tracker(cfg, params: dict, name: str | None = None):
    """A ``got10k.trackers.Tracker`` (PIL RGB frames in, x,y,w,h boxes out)."""
    from got10k.trackers import Tracker  # optional dependency (pip install got10k six)

    class _Adapter(Tracker):
        def __init__(self):
            super().__init__(name=name or cfg.name, is_deterministic=True)
            self.impl = runner.SequenceTracker(cfg, params)

        @staticmethod
        def _bgr(image) -> np.ndarray:
            a = np.asarray(image)
            return a[..., ::-1] if a.ndim == 3 and a.shape[2] == 3 else a

        def init(self, image, box):
            self.impl.init(self._bgr(image), box)

        def update(self, image):
            return self.impl.update(self._bgr(image))[0]

    return _Adapter()
