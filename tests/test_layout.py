"""The layout tells the architecture: gateway/ is rooms stacked in one order, and a module imports
only from its own room or the rooms below it; no two modules import each other, even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"

# Bottom to top. A room may import any room before it in this list, never one after it.
ORDER = (
    ("core",),  # settings, database, start-up, logs, middleware, dependencies, phones
    ("data",),  # tables, content, reference lists, producers, staff accounts
    ("aggregators",),  # one adapter per aggregator, the sender interface, callback helpers
    ("outbound",),  # outbox, broadcasts, budgets, reply ceilings, corrections
    ("actions",),  # what an action changes across data and outbound
    ("ussd", "sms", "voice"),  # one room per channel; channels never import each other
    ("admin", "api"),  # staff surfaces
    ("metrics",),  # what the operator watches, read across rooms
    ("worker",),  # the worker process's cycle
    ("app",),  # the web process
    ("cli",),  # the command line, which starts either
)
LEVEL = {room: level for level, rooms in enumerate(ORDER) for room in rooms}


def _module(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = GATEWAY.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def _imports(path: Path) -> set[str]:
    """Every gateway module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gateway":
                found.update(f"gateway.{alias.name}" for alias in node.names)
            elif node.module.startswith("gateway."):
                # `from gateway.x import name`: name may be a submodule or an attribute.
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if _is_module(candidate) else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("gateway."))
    return found


MODULES = {_module(path): path for path in sorted(GATEWAY.rglob("*.py"))}


def _room(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("module", [m for m in MODULES if m != "gateway"])
def test_rooms_import_only_rooms_below(module):
    room = _room(module)
    assert room in LEVEL, f"{module}: room {room!r} is not in tests/test_layout.py ORDER (and the README)"
    upward = sorted(
        target for target in _imports(MODULES[module])
        if target != "gateway" and _room(target) != room and LEVEL.get(_room(target), -1) >= LEVEL[room]
    )
    assert not upward, f"{module} ({room}) imports from rooms at or above its own: {upward}"


def test_no_import_cycles_between_modules():
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue  # a package and its own modules
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_room_says_what_it_holds():
    for package in sorted(p for p in GATEWAY.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text("utf-8")))
        assert doc, f"gateway/{package.name}/__init__.py has no docstring saying what the room holds"


@pytest.mark.parametrize("channel", ["ussd", "sms", "voice"])
def test_a_channel_is_one_webhook_and_one_service(channel):
    room = GATEWAY / channel
    assert (room / "webhook.py").exists() and (room / "service.py").exists()
