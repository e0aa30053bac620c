"""What every command shares: absl flags with ml_collections' config flag, ``--help`` that
answers, ``--config`` resolved to a shipped config by name, ``--config.<key>`` overrides
checked against the config before absl parses them, and the config validated once."""
from __future__ import annotations

import faulthandler
import signal
import sys
from typing import Callable

from absl import app, flags
from ml_collections import config_flags

from clnet_jax import config as config_lib


def define_config(default: str | None) -> flags.FlagHolder:
    """``--config`` (a file, a shipped name, with an optional ``:arg``), default ``default``."""
    return config_flags.DEFINE_config_file(
        "config", None if default is None else config_lib.resolve_path(default),
        "a config file, or a shipped name: " + ", ".join(config_lib.shipped_configs())
        + " (NAME:ARG passes ARG to its get_config)")


def loaded(holder: flags.FlagHolder, required: bool = True):
    """The parsed config, validated (exits with the message where it is not valid)."""
    cfg = holder.value
    if cfg is None:
        if required:
            sys.exit("error: --config is needed")
        return None
    try:
        return config_lib.validate(cfg)
    except ValueError as e:
        sys.exit(f"error: {e}")


def command_argv(argv: list[str] | None = None, doc: str = "",
                 flag_module: str | None = None) -> list[str]:
    """A command's ``argv`` (default ``sys.argv``) with ``--config`` resolved; exits with the
    error message where the config cannot be found. ``--help``/``-h`` prints ``doc`` and the
    flags that ``flag_module`` defines, then exits 0 (absl's own ``--help`` exits 1)."""
    argv = list(sys.argv if argv is None else argv)
    if "--help" in argv[1:] or "-h" in argv[1:]:
        from absl import flags
        print(doc.strip() + "\n")
        for module in (flag_module, "clnet_jax.distributed") if flag_module else ():
            text = flags.FLAGS.module_help(module)
            if text.strip():
                print(text)
        print("  --config.<key>=<value>: override any key of the config")
        sys.exit(0)
    try:
        return argv[:1] + resolve_argv(argv[1:])
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")


def resolve_argv(argv: list[str]) -> list[str]:
    """``argv`` with the value of ``--config`` resolved by :func:`resolve_path` (absl's config
    flag then reads it from any working directory)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + config_lib.resolve_path(arg.split("=", 1)[1])
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = config_lib.resolve_path(out[i + 1])
    return out


def check_overrides(argv: list[str], default_path: str) -> str | None:
    """Validates ``--config.a.b=value`` flags against the config file before absl parses them.

    Returns an error message naming the valid keys, or None when every key exists.
    """
    path, keys = default_path, []
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config."):
            keys.append(arg[len("--config."):].split("=", 1)[0])
    if not keys:
        return None
    if path is None:
        return "--config.<key> overrides need --config"
    cfg = config_lib.from_file(path)
    for key in keys:
        try:
            config_lib._parent(cfg, key)
        except KeyError as e:
            return e.args[0]
    return None




def run(main: Callable, doc: str, module: str, default_config: str | None,
        argv: list[str] | None = None) -> None:
    """A console script: ``--help``, ``--config`` resolved, overrides checked, then absl."""
    argv = command_argv(argv, doc, module)
    try:
        problem = check_overrides(argv[1:], None if default_config is None
                                  else config_lib.resolve_path(default_config))
    except (FileNotFoundError, ValueError) as e:
        problem = str(e)
    if problem:
        sys.exit(f"error: {problem}")
    dump_stacks_on_signal()
    app.run(main, argv=argv)


def dump_stacks_on_signal() -> None:
    """``kill -USR1 PID`` prints every thread's Python stack to stderr and the command goes
    on: the way to see where a process of a multi-process job waits when the job hangs."""
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
