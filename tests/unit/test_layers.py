"""The shape the architecture promises (docs/architecture.md), checked from the code itself:
faces over services, no import back up the layers, one reader of the environment, and processes
that load only what they use."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pelbiot_jobs"
SLICES = ("tuning", "maintenance", "metrics", "cache", "queries", "indexes", "health", "reports")
#: The folders of the package from the ground up (docs/architecture.md): nothing imports a folder
#: above its own. The slices stand side by side on one floor (a slice may read another's core).
FLOORS = [("lib",), ("config", "logs"), ("db",), ("runtime",), SLICES + ("demo",), ("jobs", "access"), ("web",),
          ("stack",), ("cli",), ("celery",)]
#: What a slice may take from the runtime: the task base (the app it registers on, parameter
#: types, the publishing stamp, when beat meant a run), the effects done once, the heartbeats' reading.
SLICE_RUNTIME = {"pelbiot_jobs.runtime.app": {"app"}, "pelbiot_jobs.runtime.params": None,
                 "pelbiot_jobs.runtime.headers": {"publishing", "scheduled_at", "scheduled_header"},
                 "pelbiot_jobs.runtime.effects": None, "pelbiot_jobs.runtime.heartbeats": {"live_hosts"}}
FACES = ("cli", "web")
HEAVY = ("pandas", "matplotlib", "sqlglot", "alembic")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def imported(path: Path, tree) -> set[str]:
    """Absolute names of the pelbiot_jobs modules (and packages) ``path`` imports, anywhere in it."""
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            out.add(name)
            out |= {f"{name}.{a.name}" for a in node.names}
    return {n for n in out if n.startswith("pelbiot_jobs")}


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def place(path: Path) -> str:
    """The folder (or root module) of a file of the package: lib, db, runtime, metrics, config..."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def floor_of(name: str) -> int:
    for i, floor in enumerate(FLOORS):
        if name in floor:
            return i
    raise AssertionError(f"{name} is on no floor of FLOORS (tests/unit/test_layers.py): give it one")


def imports_by_name(path: Path, tree) -> list[tuple[str, set[str] | None]]:
    """(module, names taken from it, or None for a whole-module import) of every pelbiot_jobs import."""
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.startswith("pelbiot_jobs")]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            if name.startswith("pelbiot_jobs"):
                out.append((name, {a.name for a in node.names}))
    return out


def test_the_root_holds_only_the_settings_the_logs_and_celerys_entry():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "celery.py", "config.py", "logs.py"], loose


def test_no_import_runs_up_a_floor():
    up = []
    for path, tree in modules():
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        mine = floor_of(place(path))
        for name in imported(path, tree):
            target = name.split(".")
            if len(target) < 2 or not ((PACKAGE / target[1]).is_dir() or (PACKAGE / f"{target[1]}.py").is_file()):
                continue  # the package itself, or a name it defines (__version__)
            if floor_of(target[1]) > mine:
                up.append(f"{rel(path)} imports {name}")
    assert not up, up


def test_lib_imports_nothing_of_the_project_and_db_only_lib_and_config():
    for path, tree in modules():
        where = place(path)
        if where not in ("lib", "db"):
            continue
        for name in imported(path, tree):
            target = name.split(".")[1] if "." in name else name
            allowed = {"lib"} if where == "lib" else {"lib", "config", "db"}
            assert target in allowed, f"{rel(path)} ({where}/) imports {name}"


def test_slices_take_from_the_runtime_only_the_task_base_and_effects():
    for path, tree in modules():
        if place(path) not in SLICES:
            continue
        for module, names in imports_by_name(path, tree):
            if not module.startswith("pelbiot_jobs.runtime"):
                continue
            if module == "pelbiot_jobs.runtime" and names:  # from ..runtime import effects
                module, names = f"pelbiot_jobs.runtime.{sorted(names)[0]}", None
            assert module in SLICE_RUNTIME, f"{rel(path)} imports {module}: not for a slice"
            allowed = SLICE_RUNTIME[module]
            assert allowed is None or names is None or names <= allowed, \
                f"{rel(path)} takes {names - allowed} from {module}"


def test_faces_never_import_each_other():
    for path, tree in modules():
        where = place(path)
        if where not in FACES:
            continue
        for name in imported(path, tree):
            parts = name.split(".")
            assert len(parts) < 2 or parts[1] not in FACES or parts[1] == where, f"{rel(path)} imports {name}"


def test_the_package_has_no_import_circle():
    """No loop among the package's modules through the imports made when a module loads (its
    top-level imports); imports inside functions load later and are left out, as Python does."""
    graph: dict[str, set[str]] = {}
    names = set()
    for path, tree in modules():
        here = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        names.add(here)
        top = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                         type_ignores=[])
        graph[here] = imported(path, top)
    graph = {k: {v for v in vs if v in names and v != k} for k, vs in graph.items()}
    done, path_, found = set(), [], []

    def visit(node):
        if node in path_:
            found.append(path_[path_.index(node):] + [node])
            return
        if node in done:
            return
        path_.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        path_.pop()
        done.add(node)
    for node in sorted(graph):
        visit(node)
    assert not found, found


def test_no_face_imports_a_task_module():
    for path, tree in modules():
        if "cli" in path.relative_to(PACKAGE).parts:
            tasks = {n for n in imported(path, tree) if n.endswith(".tasks")}
            assert not tasks, f"{rel(path)} imports {tasks}: call the slice's service instead"


def test_cores_do_not_import_faces_services_or_other_slices():
    for path, tree in modules():
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2 or parts[0] not in SLICES or path.stem in ("service", "tasks", "__init__"):
            continue
        for name in imported(path, tree):
            target = name.split(".")
            assert not (len(target) > 2 and target[2] in ("service", "tasks")), f"{rel(path)} imports {name}"
            assert target[1:2] != ["cli"], f"{rel(path)} imports {name}"



def test_only_the_settings_loader_reads_the_environment():
    readers = set()
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(rel(path))
    # config.py reads it; stack/supervisor.py hands the PELBIOT_* settings to the children `up`
    # starts and Flower its checked credentials (docs/architecture.md).
    assert readers == {"pelbiot_jobs/config.py", "pelbiot_jobs/stack/supervisor.py"}


def loaded_after(code: str, cwd: Path) -> list[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_beat_loads_neither_sql_parser_nor_dataframes_nor_sqlalchemy(tmp_path):
    loaded = loaded_after("from pelbiot_jobs.config import load_settings\n"
                          "from pelbiot_jobs.runtime.app import configure\n"
                          "configure(load_settings(), with_schedule=True, deep=False)\n"
                          "import pelbiot_jobs.runtime.beat\n", tmp_path)
    assert not set(loaded) & {*HEAVY, "sqlalchemy"}, loaded


def test_the_supervisor_loads_neither_celery_nor_sqlalchemy(tmp_path):
    loaded = loaded_after("import pelbiot_jobs.cli\n"
                          "from pelbiot_jobs.config import load_settings\n"
                          "from pelbiot_jobs.stack.supervisor import Supervisor\n"
                          "from pelbiot_jobs.stack.embedded import answers\n"
                          "s = load_settings(); Supervisor(s); answers(s.embedded_socket)\n",
                          tmp_path)
    assert not set(loaded) & {*HEAVY, "celery", "kombu", "sqlalchemy", "redis"}, loaded


@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_the_sql_parser_loads_only_for_the_deep_check(tmp_path, kind):
    from pelbiot_jobs.cache.spec import parse_cache_file
    from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES

    loaded = loaded_after("from pelbiot_jobs.cache.spec import parse_cache_file\n"
                          "from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES\n"
                          f"parse_cache_file(SHIPPED_SCHEDULES / 'cache.yaml', [], prove_sql={kind == 'deep'})\n",
                          tmp_path)
    assert ("sqlglot" in loaded) == (kind == "deep")
    problems: list[str] = []
    shallow = parse_cache_file(SHIPPED_SCHEDULES / "cache.yaml", problems, prove_sql=False)
    deep = parse_cache_file(SHIPPED_SCHEDULES / "cache.yaml", problems, prove_sql=True)
    assert problems == [] and [w.namespace for w in shallow] == [w.namespace for w in deep]


def test_a_shallow_check_still_finds_structure_problems_and_a_deep_one_the_sql(tmp_path):
    from pelbiot_jobs.cache.spec import parse_cache_file

    path = tmp_path / "cache.yaml"
    path.write_text("warmers:\n  w:\n    key: 'route:/x'\n    sql: DELETE FROM devices\n    ttl: never\n")
    shallow: list[str] = []
    parse_cache_file(path, shallow, prove_sql=False)
    assert shallow == [f"{path}:5: ttl: expected a duration such as 15s, 5m or 1h, got 'never'"]
    deep: list[str] = []
    parse_cache_file(path, deep, prove_sql=True)
    assert any(":4: warmer 'w': SQL is not a plain read" in p for p in deep), deep


def test_no_module_imports_another_slices_task_module():
    """A slice sends another slice's task by its name (app.tasks[...]); it never imports it."""
    for path, tree in modules():
        where = place(path)
        for name in imported(path, tree):
            parts = name.split(".")
            if len(parts) >= 3 and parts[2] == "tasks" and parts[1] != where:
                raise AssertionError(f"{rel(path)} imports {name}")
