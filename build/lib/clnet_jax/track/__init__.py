"""Tracking: OpenCV-exact crops, the pure jitted ``init``/``step`` (``tracker``), the
host-side sequence loop (``runner``) and ``clnet-track``."""
