"""Every note the library can report has its English in the CLI (lm_routing.cli.notes), and only there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from lm_routing.cli.notes import MESSAGES, say
from lm_routing.errors import Note

LIBRARY = Path(__file__).resolve().parents[2] / "router"
PREFIXES = {"Note": "", "PlanNote": "", "LabelWarning": "label-warning-"}  # LabelWarning becomes a note of this code


def emitted_codes() -> set[str]:
    """The code of every Note, PlanNote and LabelWarning the library constructs (the first argument, a literal)."""
    codes = set()
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PREFIXES:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes.add(PREFIXES[node.func.id] + first.value)
                elif not isinstance(first, (ast.Name, ast.Attribute, ast.JoinedStr)):
                    raise AssertionError(f"{path}: {node.func.id}(...) without a code")
    return codes


def test_every_code_the_library_emits_has_english_and_no_other():
    codes = emitted_codes()
    assert len(codes) >= 15  # the scan found them (it fails if Note's calls change shape)
    assert codes == set(MESSAGES)


def test_an_unknown_code_is_refused_not_printed_as_data():
    with pytest.raises(KeyError, match="no English for note code 'new-thing'"):
        say(Note("new-thing", count=1))


def test_the_library_builds_no_note_text():
    """No library module formats a note: a Note's arguments are its code, its settings and its fields."""
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Note":
                assert all(not isinstance(arg, ast.JoinedStr) for arg in node.args[1:]), f"{path}:{node.lineno}"
                assert len(node.args) <= 2, f"{path}:{node.lineno}: Note(code, settings, **fields)"
