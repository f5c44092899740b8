"""The frame every page shares: probabilities with the digits they need, links that restore a view, the
low-probability warning and clear messages for refused files and models that need internet."""

from __future__ import annotations

import pytest

from pages.ui.widgets import format_probability


@pytest.mark.parametrize(("p", "shown"), [
    (0.973, "97.3%"), (1.0, "100.0%"), (0.0123, "1.2%"), (0.00999, "1.0%"), (0.0099, "0.99%"),
    (0.001234, "0.12%"), (0.000001, "0.0001%"), (0.0000012345, "0.00012%"), (3.2e-12, "3.2e-10%"), (0.0, "0%"),
])
def test_probabilities_keep_two_significant_digits_below_one_percent(p, shown):
    assert format_probability(p) == shown
