"""The house: the library's import graph has no cycles, lazy imports included."""

from __future__ import annotations

import ast

from tests.conftest import ROOT


def _module_name(path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """speech_emotion module -> the speech_emotion modules it imports, at module level or inside functions.

    Importing ``a.b.c`` also imports the packages ``a.b``, except the importer's own packages
    (already being imported when it runs)."""
    modules = {_module_name(p): p for p in (ROOT / "speech_emotion").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        direct: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module in modules:
                    direct.add(node.module)
                direct |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                direct |= {a.name for a in node.names if a.name in modules}
        edges: set[str] = set()
        for target in direct:
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                ancestor = ".".join(parts[:i])
                own_package = i < len(parts) and (name == ancestor or name.startswith(ancestor + "."))
                if not own_package:
                    edges.add(ancestor)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "speech_emotion.datasets" in graph["speech_emotion.models.stacking"]  # inside train_stacking
    assert "speech_emotion.corpora.common" in graph["speech_emotion.corpora.tess"]
    assert "speech_emotion.corpora.tess" in graph["speech_emotion.corpora.ingest"]


def test_no_import_cycles():
    graph = import_graph()
    cycles = [c for c in (_cycle_from(graph, m) for m in sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_config_and_the_parsers_import_no_module_that_imports_them():
    graph = import_graph()
    assert graph["speech_emotion.config"] <= {
        "speech_emotion.corpora", "speech_emotion.corpora.common", "speech_emotion.corpora.custom",
        "speech_emotion.features",
        "speech_emotion.models", "speech_emotion.models.cnn_lstm", "speech_emotion.models.cnn_transformer",
        "speech_emotion.models.lstm_cnn", "speech_emotion.models.functionals_svm", "speech_emotion.audio",
        "speech_emotion.storage",
    }
    # storage (local paths and object-storage URLs) is a leaf: anything may use it
    assert graph["speech_emotion.storage"] == set()
    for parser in ("tess", "savee", "ravdess", "crema", "custom"):
        assert graph[f"speech_emotion.corpora.{parser}"] <= {"speech_emotion.corpora.common", "speech_emotion.storage"}
