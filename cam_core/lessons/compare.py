"""Where two lessons part ways: the first step at which their stages or their numbers differ."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cam_core.lessons.steps import STAGES, Lesson, Step

RTOL = 1e-4


@dataclass(frozen=True)
class Parting:
    """The first step (0-based index) where two lessons differ, the stage each has there ("" past its last step),
    the stages they share before it, whether their maps nevertheless agree, and a one-line explanation."""

    index: int
    stage: str
    other_stage: str
    shared: tuple[str, ...]
    same_result: bool
    summary: str


def same(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    """Whether two steps' values agree (same shape, equal up to float32 rounding relative to their size)."""
    if first is None or second is None:
        return first is None and second is None
    if first.shape != second.shape:
        return False
    scale = max(float(np.abs(first).max(initial=0.0)), float(np.abs(second).max(initial=0.0)), 1e-30)
    return bool(np.allclose(first, second, rtol=RTOL, atol=RTOL * 0.1 * scale))


def compare_lessons(a: Lesson, b: Lesson) -> Parting | None:
    """The first step where a and b part ways (a different stage, or the same stage with different numbers), or None
    when they agree at every step."""
    for index in range(max(len(a.steps), len(b.steps))):
        left = a.steps[index] if index < len(a.steps) else None
        right = b.steps[index] if index < len(b.steps) else None
        if left is not None and right is not None and left.stage == right.stage and same(left.value, right.value):
            continue
        shared = tuple(step.stage for step in a.steps[:index])
        agree = same(a.raw, b.raw)
        return Parting(index, left.stage if left else "", right.stage if right else "", shared, agree,
                       summary(a, b, left, right, shared, agree))
    return None


def stage_words(stages: tuple[str, ...]) -> str:
    words = [STAGES[stage].removeprefix("the ") for stage in stages]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def summary(a: Lesson, b: Lesson, left: Step | None, right: Step | None, shared: tuple[str, ...], agree: bool) -> str:
    """One line: what both share, where they part and how each does that step."""
    def how(lesson: Lesson, step: Step | None, named: bool) -> str:
        if step is None:
            return f"{lesson.card.name}: nothing more"
        return f"{lesson.card.name} → {step.heading}: {step.how}" if named else f"{lesson.card.name}: {step.how}"

    start = f"Both use the same {stage_words(shared)}; " if shared else "They differ from the first step; "
    if left is not None and right is not None and left.stage == right.stage:
        line = f"{start}they part at {STAGES[left.stage]}. {how(a, left, False)}; {how(b, right, False)}."
    else:
        line = f"{start}then they take different steps. {how(a, left, True)}; {how(b, right, True)}."
    return line + (" Yet their maps come out the same here." if agree else "")
