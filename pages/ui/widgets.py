"""Widgets and views the pages share: layer and parameter pickers, the method card, progress with a time estimate."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import streamlit as st

from cam_core import Explainer, MethodCard, Param
from cam_core.sharing.waiting import Wait, on_wait


def format_seconds(seconds: float) -> str:
    """A duration as milliseconds below one second, else as seconds."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def format_probability(p: float) -> str:
    """A probability as a percentage with the digits it needs: one decimal from 1 %, two significant digits below
    (trailing zeros dropped; scientific below 0.000001 %), "0%" for zero."""
    percent = 100 * p
    if percent <= 0:
        return "0%"
    rounded = float(f"{percent:.2g}")
    if rounded >= 1:
        return f"{percent:.1f}%"
    if rounded < 1e-6:
        return f"{percent:.1e}%"
    decimals = 1 - math.floor(math.log10(rounded))
    return f"{percent:.{decimals}f}".rstrip("0").rstrip(".") + "%"


class ProgressLine:
    """A progress bar whose text also says when this session waits for the server: other sessions' passes ahead of
    its own, or the same work that another session started (and will share). Waiting inside `queue()` ends when the
    page reruns (the session moved on), so abandoned work is not finished for nobody."""

    def __init__(self, text: str, *, hidden: bool = False) -> None:
        """A bar at zero saying text; hidden: nothing shows until the first update (for work that may need none)."""
        self._slot = st.empty()
        self.value, self.text, self._shown = 0.0, text, ""
        if not hidden:
            self._draw(text)

    def _draw(self, text: str) -> None:
        self._shown = text
        self._slot.progress(self.value, text=text)

    def update(self, value: float, text: str) -> None:
        """The bar at value (clipped to 0 … 1), saying text."""
        self.value, self.text = min(max(value, 0.0), 1.0), text
        self._draw(text)

    def waiting(self, wait: Wait) -> None:
        """Say why this session waits (only when that changes: each change is sent to the browser); reading the
        session state lets Streamlit stop this run here if the page has moved on."""
        text = f"{self.text} · waiting for the server: {wait.describe()}"
        if text != self._shown:
            self._draw(text)
        _ = "model_name" in st.session_state

    @contextlib.contextmanager
    def queue(self) -> Iterator[None]:
        """Within this block, the bar says when and why this session waits for the server."""
        with on_wait(self.waiting):
            yield

    def empty(self) -> None:
        """Remove the bar."""
        self._slot.empty()


def progress_callback(line: ProgressLine, what: str, unit: str = "model passes", start: float = 0.0,
                      share: float = 1.0) -> Callable[[int, int], None]:
    """A cam_core progress(done, total) callback: line fills from start over share of the bar and says how many
    units of what are done and about how long the rest will take."""
    started = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        left = (time.perf_counter() - started) / max(done, 1) * (total - done)
        line.update(start + share * done / max(total, 1),
                    f"{what}: {done} of {total} {unit} · about {left:.0f} s left")

    return on_progress


def param_range(param: Param) -> str:
    """The values a parameter takes, in words."""
    if param.choices:
        return " | ".join(param.choices)
    if isinstance(param.default, bool):
        return "on | off"
    if isinstance(param.default, str):
        return f"text, default {param.default!r}"
    return f"{param.minimum:g} to {param.maximum:g}, default {param.default:g}"


def method_card(card: MethodCard, wide: bool = False) -> None:
    """A method's teaching card: family, cost and scope, idea, formula, strengths, weaknesses, parameters, paper;
    wide puts the three lists side by side."""
    scope = "class-specific" if card.class_specific else "not class-specific"
    st.markdown(f"**{card.name}** · {card.family} · cost: {card.cost} · {scope}")
    st.markdown(card.explanation)
    for part in card.formula.split(r"\qquad"):
        st.latex(part.strip())
    lists = {
        "Strengths": card.strengths,
        "Weaknesses": card.weaknesses,
        "Parameters": [f"`{p.name}` ({param_range(p)}): {p.help}" for p in card.params],
    }
    places = st.columns(len(lists)) if wide else [st.container() for _ in lists]
    for place, (heading, items) in zip(places, lists.items(), strict=True):
        place.markdown(f"**{heading}**\n" + ("".join(f"\n- {item}" for item in items) or "\nnone"))
    st.caption(f"Paper: {card.paper}")


def layer_picker(explainer: Explainer, key: str) -> str:
    """A select box of the model's layers, deepest (the default target layer) first."""
    choices = explainer.model.layer_choices()[::-1]
    return st.selectbox("Layer", choices, key=key, help="Deeper layers: coarser maps, more class-specific channels.")


def stack_choices(explainer: Explainer) -> list[str]:
    """The layers offered to multi-layer methods (the picker's layers and the pyramid), shallow to deep."""
    forward = [name for name, _ in explainer.model.module.named_modules()]
    found = dict.fromkeys([*explainer.model.layer_choices()[:-1], *explainer.model.pyramid()])
    return sorted(found, key=forward.index)


def param_key(card: MethodCard, param: Param, prefix: str = "param") -> str:
    """The widget key of one method parameter: each page and method keeps its own setting."""
    return f"{prefix}_{card.id}_{param.name}"


def param_widget(card: MethodCard, param: Param, prefix: str = "param",
                 value: str | bool | int | float | None = None) -> str | bool | int | float:
    """A widget for one method parameter, keyed by param_key, starting at value (default: the parameter's) when
    the session has no value for it yet."""
    key = param_key(card, param, prefix)
    label = param.name.replace("_", " ")
    start = param.default if value is None else value
    if param.choices:
        return st.selectbox(label, param.choices, index=list(param.choices).index(start), key=key, help=param.help)
    if isinstance(param.default, bool):
        return st.checkbox(label, value=bool(start), key=key, help=param.help)
    if isinstance(param.default, str):
        return st.text_input(label, value=str(start), key=key, help=param.help)
    if isinstance(param.default, int):
        return st.number_input(label, int(param.minimum), int(param.maximum), int(start), 1, key=key,
                               help=param.help)
    step = 10.0 ** math.floor(math.log10((param.maximum - param.minimum) / 100))  # a round step: 0.01, not 0.0099
    return st.slider(label, float(param.minimum), float(param.maximum), float(start), step, key=key,
                     help=param.help)
