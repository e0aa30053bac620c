"""The shipped configs: each ``<name>.py`` here has a ``get_config()`` returning a ConfigDict.

They are read by path (``config.from_file``), never imported as modules; a clone also
reaches them as ``configs/<name>.py`` (a link to this folder), and every command accepts a
bare name (``--config demo``) or a path.
"""
