"""The package as users get it: pyproject consistent with the pinned requirements, console
scripts that answer --help, an install that imports from anywhere, a layout without import
cycles."""
from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import clnet_jax
from conftest import ROOT

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as _f:
    PYPROJECT = tomllib.load(_f)["project"]


def _pins(path: str) -> dict[str, str]:
    """name -> exact version of a requirements file (following -r includes)."""
    pins = {}
    with open(os.path.join(ROOT, path)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r "):
                pins.update(_pins(line[3:].strip()))
            elif line:
                req = Requirement(line)
                (spec,) = req.specifier
                assert spec.operator == "==", f"{path}: {line} is not an exact pin"
                pins[canonicalize_name(req.name)] = spec.version
    return pins


def _ranges(reqs: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in reqs}


@pytest.mark.parametrize("lock,extra", [("requirements.txt", None),
                                        ("requirements-test.txt", "test"),
                                        ("requirements-vot.txt", "vot")])
def test_requirement_pins_satisfy_pyproject(lock, extra):
    """The requirements files are the lock: every pin lies inside pyproject's range, and every
    runtime dependency (and the extra's) is pinned."""
    pins = _pins(lock)
    ranges = _ranges(PYPROJECT["dependencies"])
    if extra:
        ranges.update(_ranges(PYPROJECT["optional-dependencies"][extra]))
    for name, req in ranges.items():
        assert name in pins, f"{lock} lacks {name} (pyproject: {req})"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{lock}: {name}=={pins[name]} is outside pyproject's {req.specifier}"
    unknown = set(pins) - set(ranges)
    assert not unknown, f"{lock} pins what pyproject does not declare: {sorted(unknown)}"


def test_version_is_exported():
    assert clnet_jax.__version__.count(".") == 2


def test_public_api_is_importable_from_the_top():
    from clnet_jax import (
        REGISTRY,
        SequenceTracker,
        Variant,
        from_file,
        get_variant,
        load_params,
        make_tracker,
    )
    assert "clnet" in REGISTRY and callable(make_tracker) and callable(load_params)
    assert get_variant("meta_sgd") is REGISTRY["meta_sgd"] and isinstance(REGISTRY["none"], Variant)
    assert SequenceTracker.__name__ == "SequenceTracker" and callable(from_file)
    with pytest.raises(AttributeError):
        clnet_jax.not_a_name  # noqa: B018


def _modules() -> dict[str, str]:
    out = {}
    base = os.path.join(ROOT, "clnet_jax")
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(dirpath, f)
    return out


def _import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at module level or inside functions."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module in mods:
                for a in node.names:
                    graph[m].add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods
                                 else node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
        graph[m] -= {m, "clnet_jax"}
    return graph


# The pipeline's layers, lowest first: a module may import its own layer's modules and
# those of lower layers, never a higher layer or a sibling at the same height.
LAYERS = {"config": 0, "distributed": 0, "data": 0, "configs": 1, "io": 1, "model": 2,
          "adapt": 3, "track": 4, "train": 5, "evaluate": 5, "deploy": 5, "runtime": 5,
          "experiments": 6, "commands": 7}


def _layer(module: str) -> str:
    return module.split(".")[1]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a module from a higher layer or a sibling layer (the
    package root, which only re-exports names lazily, is left out)."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() if m != "clnet_jax"
                  for d in deps if _layer(d) != _layer(m)
                  and LAYERS[_layer(d)] >= LAYERS[_layer(m)])


def test_imports_follow_the_pipeline_layers():
    """io -> model -> adapt -> track -> train, evaluate, deploy -> experiments -> commands,
    with config, distributed and data below: no import runs upward or sideways."""
    graph = _import_graph()
    layers = {_layer(m) for m in graph if m != "clnet_jax"}
    assert layers <= set(LAYERS), f"a new subpackage needs its layer: {sorted(layers - set(LAYERS))}"
    bad = layer_violations(graph)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_layer_check_reports_upward_and_sideways_imports():
    graph = {"clnet_jax.model.x": {"clnet_jax.train.step", "clnet_jax.io.pth"},
             "clnet_jax.train.step": {"clnet_jax.evaluate.scoring", "clnet_jax.train.trainer"},
             "clnet_jax.commands.train": {"clnet_jax.train.step"}}
    assert layer_violations(graph) == ["clnet_jax.model.x -> clnet_jax.train.step",
                                       "clnet_jax.train.step -> clnet_jax.evaluate.scoring"]


def test_no_import_cycles():
    """Module-level and function-level imports alike: no module reaches itself."""
    graph = _import_graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path + [d])
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_every_module_imports():
    for m in pkgutil.walk_packages(clnet_jax.__path__, "clnet_jax."):
        if not m.name.startswith("clnet_jax.commands."):  # each defines absl flags: run
            # below, one per process
            importlib.import_module(m.name)


@pytest.mark.parametrize("script", sorted(PYPROJECT["scripts"]))
def test_console_scripts_answer_help(script, tmp_path):
    mod, fn = PYPROJECT["scripts"][script].split(":")
    code = f"import sys; sys.argv = [{script!r}, '--help']; from {mod} import {fn}; sys.exit({fn}())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.stdout) > 100 and "Traceback" not in out.stderr


def test_commands_print_every_threads_stack_on_sigusr1_and_go_on(tmp_path):
    """How a hung multi-process job is diagnosed (docs/scaling.md): the signal does not stop
    the command, and the stack names the function each thread waits in."""
    code = ("import os, signal, threading, time\n"
            "from clnet_jax.commands import common\n"
            "common.dump_stacks_on_signal()\n"
            "def waiting_worker():\n    time.sleep(30)\n"
            "threading.Thread(target=waiting_worker, daemon=True).start()\n"
            "time.sleep(0.2)\n"
            "os.kill(os.getpid(), signal.SIGUSR1)\n"
            "time.sleep(0.2)\n"
            "print('still running')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "still running"
    assert "waiting_worker" in out.stderr and "Current thread" in out.stderr


def test_a_missing_config_is_named_with_the_shipped_ones(tmp_path):
    code = ("import sys; sys.argv = ['clnet-train', '--config', 'no_such_config']; "
            "from clnet_jax.commands.train import run; run()")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode != 0
    assert "no_such_config" in out.stderr and "demo" in out.stderr and "Traceback" not in out.stderr


def test_installed_package_imports_and_finds_its_configs_from_anywhere(tmp_path):
    """``pip install`` (no dependencies, no network) into a folder, then use it from another
    directory: the package, its shipped configs and the console scripts are there."""
    import shutil
    src = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "clnet_jax"), src / "clnet_jax",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                          "--no-build-isolation", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for script in PYPROJECT["scripts"]:
        assert (target / "bin" / script).is_file(), script
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import clnet_jax, os; from clnet_jax import config; "
            "print(clnet_jax.__file__); print(config.resolve_path('configs/demo.py')); "
            "print(config.from_file('clnet_r50').name); "
            "from clnet_jax.data import benchmarks; print(len(benchmarks.table('uav123')['UAV20L']))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    run = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    file, demo, name, uav20l = run.stdout.split()
    assert file.startswith(str(target)) and demo.startswith(str(target)) and name == "clnet_r50"
    assert uav20l == "20"  # the shipped range tables are installed with the package


def test_every_sequence_of_every_shipped_config_overrides_from_the_command_line():
    """absl's config flag overrides tuples, not lists: every shipped config holds its
    sequences as tuples, and one parses from the command line (a list assigned in a
    config file becomes a tuple)."""
    from absl import flags
    from ml_collections import config_flags

    from clnet_jax import config as config_lib

    def lists(node, prefix=""):
        for k, v in node.items():
            if hasattr(v, "items"):
                yield from lists(v, f"{prefix}{k}.")
            elif isinstance(v, list):
                yield prefix + k

    for name in config_lib.shipped_configs():
        assert not list(lists(config_lib.from_file(name))), name
    argv = ["x", f"--config={config_lib.resolve_path('ablation')}",
            "--config.ablation.seeds=(0, 1)", "--config.train.stages=('base', 'clnet')",
            "--config.anchor.ratios=(0.5, 1.0)"]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=argv)
    fv(argv)
    assert fv.config.ablation.seeds == (0, 1)
    assert fv.config.train.stages == ("base", "clnet")
    assert fv.config.anchor.ratios == (0.5, 1.0)
