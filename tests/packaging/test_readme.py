"""What README.md lists about methods is derived from the registry: its method table is
`python -m cam_core methods --markdown`, and fails here as soon as a card changes without the README."""

from __future__ import annotations

from pathlib import Path

from cam_core import methods
from cam_core.methods.catalogue import markdown_table, readme_section

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_method_table_is_the_registrys():
    assert readme_section(README.read_text()) == markdown_table(), (
        "README.md's method table is out of date: paste `python -m cam_core methods --markdown` between its markers")


def test_the_table_has_one_row_per_registered_method():
    rows = [line for line in markdown_table().splitlines()[2:]]
    assert [row.split("|")[1].strip().strip("`") for row in rows] == [card.id for card in methods()]
    assert all(card.definition for card in methods()), "every card states the published definition"
