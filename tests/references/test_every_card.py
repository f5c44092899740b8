"""The cards say what each method is checked against (README's "tested against"): every method whose card says
"paper" or "authors' code" has a reference in tests/references, and every reference there is promised by a card.
Each reference module lists the methods it re-implements in REFERENCED."""

from __future__ import annotations

import importlib
from pathlib import Path

from cam_core import methods


def referenced() -> dict[str, set[str]]:
    """Each reference module's REFERENCED set, by module name."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.references.{path.stem}")
        if hasattr(module, "REFERENCED"):
            found[path.stem] = set(module.REFERENCED)
    return found


def test_every_card_that_names_a_paper_has_a_reference():
    promised = {card.id for card in methods() if card.reference in ("paper", "authors' code")}
    done = set().union(*referenced().values())
    missing, unpromised = sorted(promised - done), sorted(done - promised)
    assert not missing and not unpromised, f"no reference for {missing}; not promised by a card: {unpromised}"
