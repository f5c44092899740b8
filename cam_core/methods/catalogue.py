"""The method table in Markdown, written from the registered cards (the README's table is this text)."""

from __future__ import annotations

import cam_core.methods  # noqa: F401 - registers every method
from cam_core.registry import MethodCard, Param, methods

README_START = "<!-- methods-table:start (python -m cam_core methods --markdown) -->"
README_END = "<!-- methods-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _variants(params: tuple[Param, ...]) -> str:
    shown = []
    for param in params:
        if param.choices:
            others = [str(choice) for choice in param.choices if choice != param.default]
            shown.append(f"`{param.name}` {' / '.join(others)}")
        elif isinstance(param.default, bool):
            shown.append(f"`{param.name}` {'off' if param.default else 'on'}")
        elif isinstance(param.default, str):
            shown.append(f"`{param.name}` (text, default {param.default!r})")
        else:
            shown.append(f"`{param.name}` (default {param.default:g})")
    return "; ".join(shown) or "—"


def _tested(card: MethodCard) -> str:
    tests = [card.reference] if card.reference else []
    for peer in card.peers:
        setting = ", ".join(f"`{name}={value!r}`" for name, value in peer.params)
        tests.append(f"{peer.library} `{peer.name}`" + (f" with {setting}" if setting else ""))
    return "; ".join(tests) or "—"


def markdown_table() -> str:
    """One row per method: id, name, cost, the published definition, what we compute by default, the variants its
    parameters offer, and what the tests check it against."""
    header = ("id", "name", "cost", "published definition", "what we compute by default", "variants (parameters)",
              "tested against")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for card in methods():
        cells = (f"`{card.id}`", card.name, card.cost, card.definition or card.paper, card.differs or "the same",
                 _variants(card.params), _tested(card))
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows)


def readme_section(readme: str) -> str:
    """The text between the README's method-table markers (a ValueError when they are missing)."""
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return readme[start:end].strip("\n")
