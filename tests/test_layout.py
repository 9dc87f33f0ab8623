"""Packaging promises: import-package names in the wheel, what may import what (the core
never imports a built-in plugin or the AWS kit; the built-in plugins never import each other),
and no import circles among the project's modules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = (
    "offload_backends",
    "offload_transports",
    "offload_otel",
    "backends",
    "transports",
    "otel",
)
#: Import package -> the folder it is installed from.
FOLDERS = {
    "offload_core": ROOT / "offload_core",
    "offload_backends": ROOT / "backends",
    "offload_transports": ROOT / "transports",
    "offload_otel": ROOT / "otel",
}
#: The AWS kit, and the test helpers, which ship with the core but are not part of it.
KIT = "offload_core.aws"
NOT_CORE = (KIT, "offload_core.testing")


def _module_files() -> dict[str, Path]:
    out = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            out[".".join((package, *parts)).removesuffix(".__init__")] = path
    return out


MODULES = _module_files()


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _is_core(name: str) -> bool:
    """A module of the core itself: under offload_core, but not the kit or the test helpers."""
    return _within(name, "offload_core") and not any(_within(name, p) for p in NOT_CORE)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, *, runtime: bool = False) -> set[str]:
    """Every module ``name`` imports (relative imports made absolute; ``from a import b`` is
    ``a.b`` when that is a module of the project), in functions too. With ``runtime``, not
    what only type checkers read (``if TYPE_CHECKING:``)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if runtime and isinstance(child, ast.If) and _type_checking(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, *([child.module] if child.module else [])])
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in MODULES else base)
            visit(child)

    visit(tree)
    return found


def _offenders(modules: list[str], banned: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for name in modules:
        bad = sorted(m for m in _imports(name) if any(_within(m, b) for b in banned))
        if bad:
            out[name] = bad
    return out


def test_core_never_imports_builtin_plugin_modules() -> None:
    core = [name for name in MODULES if _within(name, "offload_core")]
    assert _offenders(core, PLUGIN_PACKAGES) == {}


def test_core_modules_never_import_the_aws_kit() -> None:
    """The kit ships with the core for the built-in plugins (and offload_core.testing); the
    core's own modules know nothing about AWS, not even for type checking."""
    assert _offenders([name for name in MODULES if _is_core(name)], (KIT,)) == {}


@pytest.mark.parametrize(
    ("plugin", "other"),
    [
        ("offload_backends", "offload_transports"),
        ("offload_transports", "offload_backends"),
        ("offload_otel", "offload_backends"),
        ("offload_otel", "offload_transports"),
        ("offload_backends", "offload_otel"),
        ("offload_transports", "offload_otel"),
    ],
)
def test_builtin_plugins_never_import_each_other(plugin: str, other: str) -> None:
    modules = [name for name in MODULES if _within(name, plugin)]
    folder = FOLDERS[other].name  # the name it has in the source tree
    assert _offenders(modules, (other, folder)) == {}


def test_only_the_otel_plugin_knows_opentelemetry() -> None:
    others = [name for name in MODULES if not _within(name, "offload_otel")]
    assert _offenders(others, ("opentelemetry",)) == {}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circles() -> None:
    """No module imports, directly or through others, one that imports it back: counting
    imports inside functions, not those only type checkers read."""

    def owner(imported: str) -> str | None:
        while imported and imported not in MODULES:
            imported = imported.rpartition(".")[0]
        return imported or None

    graph = {
        name: {m for m in map(owner, _imports(name, runtime=True)) if m and m != name}
        for name in MODULES
    }
    reach = {name: _reachable(graph, name) for name in graph}
    circles = sorted(
        {tuple(sorted(m for m in reach[n] if n in reach[m])) for n in graph if n in reach[n]}
    )
    assert circles == []


def test_the_synchronous_face_never_imports_asyncio() -> None:
    """A Lambda function on the synchronous face pays for no asyncio import at cold start."""
    code = (
        "import sys\n"
        "import offload_core, offload_core.aio, offload_core.flow\n"
        "import offload_transports.sqs, offload_transports.sns, offload_transports.eventbridge\n"
        "import offload_transports.aws_lambda, offload_backends.memory, offload_backends.s3\n"
        "print('asyncio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_every_core_module_loads_no_plugin_package_and_no_kit() -> None:
    core = sorted(name for name in MODULES if _is_core(name))
    rest = sorted(name for name in MODULES if _within(name, "offload_core") and not _is_core(name))
    code = (
        "import importlib, sys\n"
        f"for m in {core!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m == {KIT!r} or m.startswith({KIT + '.'!r})))\n"
        f"for m in {rest!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {PLUGIN_PACKAGES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


@pytest.mark.slow
def test_wheel_installs_only_prefixed_packages(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "benchmarks",
            "tests",
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path / "dist"),
        ],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("offload-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/")[0] for n in names}
        dist_info = next(t for t in top if t.endswith(".dist-info"))
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert top - {dist_info} == {
        "offload_core",
        "offload_backends",
        "offload_transports",
        "offload_otel",
    }
    assert "offload_core/py.typed" in names
    assert "offload_backends/plugin.py" in names
    assert "offload_core/aws/events.py" in names  # the AWS kit ships with the core
    # Every module of the source tree is in the wheel (a subpackage missing from the
    # package list would install a library that fails on import).
    shipped = {
        f"{package}/{path.relative_to(folder).as_posix()}"
        for package, folder in FOLDERS.items()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert shipped - set(names) == set()
    assert "[offload]" in entry_points
    assert "backends = offload_backends.plugin" in entry_points


def test_the_moto_helper_and_the_demo_import_without_pytest() -> None:
    """The demo (installed with the 'demo' extra, not 'test') runs without pytest."""
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None  # any 'import pytest' now fails\n"
        "import offload_core.testing.aws, offload_transports.demo\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


#: The packages whose private names (``_module``, ``_name``) are theirs alone; most specific first.
PACKAGES = ("offload_core.aws", "offload_core.testing", "offload_backends", "offload_transports")


def _package(name: str) -> str:
    return next((p for p in PACKAGES if _within(name, p)), "offload_core")


def test_no_package_imports_another_packages_private_names() -> None:
    offenders = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module == "__future__" or _package(node.module) == _package(name):
                continue
            private = [p for p in node.module.split(".") if p.startswith("_")]
            private += [a.name for a in node.names if a.name.startswith("_")]
            if private:
                offenders.setdefault(name, []).append(f"{node.module}: {private}")
    assert offenders == {}
