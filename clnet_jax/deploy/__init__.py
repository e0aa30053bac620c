"""Deployment: the tracker's ``init`` and ``step`` exported as portable artifacts
(``export``) and ``clnet-export`` (``cli``)."""
