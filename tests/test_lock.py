"""The locked dependency set is the one this venv runs, and pyproject agrees with it.

The runtime closure is computed from the installed distributions' own metadata: start from the
direct dependencies in `requirements.in`, follow every `Requires-Dist` whose marker holds here
(with the extras the requirer asked for), and demand that each distribution reached is pinned in
`requirements.txt` at the version installed. A package Azure would need but the lock lacks (the
kiota drift of issue 9: msgraph-core pinned, microsoft-kiota-* floating) fails here.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (pip-compile's output format)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line.strip()):
            found[canonicalize_name(match[1])] = match[2]
    return found


def roots(path: Path) -> dict[str, Requirement]:
    """The direct requirements of an .in file (options such as -c skipped)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            req = Requirement(text)
            found[canonicalize_name(req.name)] = req
    return found


def runtime_closure(start: dict[str, Requirement]) -> dict[str, str]:
    """name -> installed version of every distribution the roots need here, transitively."""
    reached: dict[str, str] = {}
    todo = [(name, frozenset(req.extras)) for name, req in start.items()]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = metadata.distribution(name)  # PackageNotFoundError: needed but not installed
        reached[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return reached


def test_every_runtime_package_installed_here_is_pinned_in_the_lock_at_its_version() -> None:
    lock = pins(ROOT / "requirements.txt")
    closure = runtime_closure(roots(ROOT / "requirements.in"))
    assert len(closure) > 20  # the walk really followed transitive requirements
    missing = sorted(name for name in closure if name not in lock)
    assert missing == [], f"installed runtime packages missing from requirements.txt: {missing}"
    drift = {n: (v, lock[n]) for n, v in closure.items() if lock[n] != v}
    assert drift == {}, f"installed version != locked version (installed, locked): {drift}"


def test_the_lock_holds_nothing_the_runtime_does_not_need() -> None:
    lock = pins(ROOT / "requirements.txt")
    closure = runtime_closure(roots(ROOT / "requirements.in"))
    # pip-compile resolves on this interpreter, so the two sets match exactly
    assert sorted(set(lock) - set(closure)) == []


def test_the_dev_lock_agrees_with_the_runtime_lock() -> None:
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    shared = set(runtime) & set(dev)
    assert {n: (runtime[n], dev[n]) for n in shared if runtime[n] != dev[n]} == {}
    closure = runtime_closure(roots(ROOT / "requirements-dev.in"))
    unpinned = sorted(n for n in closure if n not in dev and n not in runtime)
    assert unpinned == [], f"dev packages missing from requirements-dev.txt: {unpinned}"


def test_kiota_packages_are_locked_as_one_release_msgraph_core_accepts() -> None:
    lock = pins(ROOT / "requirements.txt")
    kiota = {n: v for n, v in lock.items() if n.startswith("microsoft-kiota-")}
    assert len(kiota) >= 5
    assert len(set(kiota.values())) == 1, kiota
    direct = roots(ROOT / "requirements.in")
    assert set(kiota) <= set(direct), "every kiota package is a pinned direct dependency"
    for text in metadata.requires("msgraph-core") or []:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in kiota and req.marker is None:
            assert req.specifier.contains(kiota[name]), (name, str(req.specifier))


def test_pyproject_declares_the_direct_dependencies_and_admits_the_locked_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    parsed = [Requirement(text) for text in project["dependencies"]]
    declared = {canonicalize_name(req.name): req for req in parsed}
    direct = roots(ROOT / "requirements.in")
    assert sorted(declared) == sorted(direct)
    lock = pins(ROOT / "requirements.txt")
    refused = {
        name: (str(req.specifier), lock[name])
        for name, req in declared.items()
        if not SpecifierSet(str(req.specifier)).contains(lock[name])
    }
    assert refused == {}
