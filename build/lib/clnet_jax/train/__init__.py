"""Training: the sharded step with pysot's freezing rules (``step``), the resumable loop
(``trainer``) and what ``clnet-train`` runs (``experiment``)."""
