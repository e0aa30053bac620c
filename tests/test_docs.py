"""The code blocks of the README and docs/ that a user would copy, run on the fixtures.

Every ```bash and ```python block runs, in document order, in a fresh folder per document,
after the substitutions below map the published weights, configs and data onto the tiny
fixtures of tests/golden. A block that cannot run on fixtures says why on the line before it:
``<!-- doctest: skip (reason) -->``. Console scripts are called through shims made from
pyproject.toml's [project.scripts], so the entry points are exercised too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import DUDEK, PARITY, ROOT

DOCS = ["README.md"] + sorted(f"docs/{f}" for f in os.listdir(os.path.join(ROOT, "docs"))
                              if f.endswith(".md") and not f.startswith("ablation"))

# published names -> fixtures (applied in this order)
SUBSTITUTIONS = [
    ("siamrpn_r50_l234_dwxcorr/model.pth", f"{PARITY}/siamrpn_tiny.pth"),
    ("clnet_r50_l234.pth", f"{PARITY}/clnet_tiny.pth"),
    ("--config clnet_r50", "--config clnet_tiny"),
    ("--config finetune", f"--config {ROOT}/tests/configs/finetune_tiny.py"),
    ("/data/my_videos", f"{PARITY}/realdata/otb"),
    ("--config siamrpn_r50", "--config siamrpn_tiny"),
    ('from_file("clnet_r50"', 'from_file("clnet_tiny"'),
    ('from_file("siamrpn_r50"', 'from_file("siamrpn_tiny"'),
    ("clip.mp4", f"{DUDEK}/img"),
    ('glob.glob("clip/*.jpg")', f'glob.glob("{DUDEK}/img/*.jpg")'),
    ('f"clip/{i:04d}.jpg"', f'f"{DUDEK}/img/{{i:04d}}.jpg"'),
    ("/data/OTB100", os.path.dirname(DUDEK)),
]

_BLOCK = re.compile(r"(?:<!--\s*doctest:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?"
                    r"```(?P<lang>[a-z]*)\n(?P<code>.*?)```", re.S)


def blocks(path: str) -> list[tuple[str, str, str | None]]:
    """(language, code, skip reason or None) of every fenced block of a document."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    out = []
    for m in _BLOCK.finditer(text):
        d = m.group("directive")
        skip = None
        if d:
            assert d.startswith("skip"), f"{path}: unknown doctest directive {d!r}"
            skip = d[len("skip"):].strip(" ()") or "no reason given"
        out.append((m.group("lang"), m.group("code"), skip))
    return out


def _shims(bindir: str) -> None:
    """An executable per console script of pyproject.toml, running this checkout's code."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    for name, target in scripts.items():
        mod, fn = target.split(":")
        path = os.path.join(bindir, name)
        with open(path, "w") as f:
            f.write(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {ROOT!r})\n"
                    f"from {mod} import {fn}\nsys.exit({fn}())\n")
        os.chmod(path, 0o755)


@pytest.fixture(scope="module")
def bindir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("bin"))
    _shims(d)
    return d


def test_every_block_runs_or_says_why_not():
    for doc in DOCS:
        for lang, _code, skip in blocks(doc):
            if lang in ("bash", "python"):
                assert skip is None or len(skip) > 10, f"{doc}: a skip needs its reason"
            else:
                assert lang in ("", "text"), f"{doc}: block language {lang!r}"


@pytest.mark.parametrize("doc", [d for d in DOCS if any(
    lang in ("bash", "python") and skip is None for lang, _, skip in blocks(d))])
@pytest.mark.slow
def test_documented_code_runs_on_the_fixtures(doc, weights_dir, bindir, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # weights a document uses without converting them first (the converter runs too)
    os.makedirs(work / "weights")
    shutil.copytree(weights_dir["siamrpn"], work / "weights" / "siamrpn_r50")
    shutil.copytree(weights_dir["clnet"], work / "weights" / "clnet_r50")
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    for i, (lang, code, skip) in enumerate(blocks(doc)):
        if skip is not None or lang not in ("bash", "python"):
            continue
        for old, new in SUBSTITUTIONS:
            code = code.replace(old, new)
        if lang == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            script = work / f"block{i}.py"
            script.write_text(code)
            cmd = [sys.executable, str(script)]
        out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, (f"{doc} block {i} ({lang}):\n{code}\n{out.stdout[-2000:]}\n"
                                     f"{out.stderr[-3000:]}")
