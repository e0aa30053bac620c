"""First-frame adaptation: CLNet's latent network (``clnet``) and the registry of rules that
turn the first frame into head parameters (``variants``)."""
