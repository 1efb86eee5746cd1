"""radsynth's layers import one way: a package imports only packages of the layers above it
(vocabulary, phantoms, io, models, pipelines, then train, evaluate, datasets and probe, then
review and cli), function-level (lazy) imports included, so no two packages need each other."""

from __future__ import annotations

import ast
from pathlib import Path

import radsynth

# The layers; the four of layer 6 ordered as they use each other (the probe scores with
# evaluate's metrics and reader, train hashes a model's weights as the data-set builder does).
RANK = {
    "vocabulary": 1,
    "phantoms": 2,
    "io": 3,
    "models": 4,
    "pipelines": 5,
    "evaluate": 6.0,
    "datasets": 6.1,
    "train": 6.2,
    "probe": 6.3,
    "review": 7,
    "cli": 7,
}
ROOT = Path(radsynth.__file__).parent


def imported_packages(path: Path) -> set[str]:
    """The radsynth packages a module imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {n.split(".")[1] for n in names if n.startswith("radsynth.") and n.count(".")}
    return found


def test_every_package_imports_only_the_layers_above_it() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        package = path.relative_to(ROOT).parts[0]
        if package not in RANK:
            continue
        for target in imported_packages(path):
            if target in RANK and target != package and RANK[target] >= RANK[package]:
                upward.append(f"{path.relative_to(ROOT)} imports radsynth.{target}")
    assert not upward, upward


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from radsynth.probe.scoring import femur_tibia\n")
    assert imported_packages(module) == {"probe"}
