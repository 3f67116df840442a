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
SLICES = ("db", "maintenance", "metrics", "cache", "queries", "indexes", "health", "reports")
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
            other = target[1] if len(target) > 1 and target[1] in SLICES else parts[0]
            assert other == parts[0] or parts[0] != "db", f"{rel(path)} (db/) imports {name}: db/ is below the slices"


def test_only_the_settings_loader_reads_the_environment():
    readers = set()
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(rel(path))
    # config.py reads it; supervisor.py hands the PELBIOT_* settings to the children `up` starts and
    # Flower its checked credentials (docs/architecture.md).
    assert readers == {"pelbiot_jobs/config.py", "pelbiot_jobs/supervisor.py"}


def loaded_after(code: str, cwd: Path) -> list[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_beat_loads_neither_sql_parser_nor_dataframes_nor_sqlalchemy(tmp_path):
    loaded = loaded_after("from pelbiot_jobs.config import load_settings\n"
                          "from pelbiot_jobs.celery_app import configure\n"
                          "configure(load_settings(), with_schedule=True, deep=False)\n"
                          "import pelbiot_jobs.beat\n", tmp_path)
    assert not set(loaded) & {*HEAVY, "sqlalchemy"}, loaded


def test_the_supervisor_loads_neither_celery_nor_sqlalchemy(tmp_path):
    loaded = loaded_after("import pelbiot_jobs.cli\n"
                          "from pelbiot_jobs.config import load_settings\n"
                          "from pelbiot_jobs.supervisor import Supervisor\n"
                          "from pelbiot_jobs.embedded import answers\n"
                          "s = load_settings(); Supervisor(s); answers(s.embedded_socket)\n",
                          tmp_path)
    assert not set(loaded) & {*HEAVY, "celery", "kombu", "sqlalchemy", "redis"}, loaded


@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_the_sql_parser_loads_only_for_the_deep_check(tmp_path, kind):
    from pelbiot_jobs.cache.spec import parse_cache_file
    from pelbiot_jobs.paths import SHIPPED_SCHEDULES

    loaded = loaded_after("from pelbiot_jobs.cache.spec import parse_cache_file\n"
                          "from pelbiot_jobs.paths import SHIPPED_SCHEDULES\n"
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
