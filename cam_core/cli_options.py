"""What the CLI's commands share: the model options, NAME=VALUE method parameters and the progress line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cam_core.errors import CamError

if TYPE_CHECKING:
    from cam_core.engine.explainer import Explainer
    from cam_core.registry import MethodCard


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --model-file and --weights: which model explains (every command that explains takes them)."""
    parser.add_argument("--model", help="a model name from models.yaml (default: mobilenet_v2, or the first entry "
                        "of --model-file)")
    parser.add_argument("--model-file", metavar="YAML", help="a models.yaml of yours, such as the fragment the "
                        "dashboard's Your model panel downloads")
    parser.add_argument("--weights", help="your own weights: a safetensors or state_dict file")


def model_explainer(args: argparse.Namespace) -> Explainer:
    """The Explainer that --model, --model-file and --weights name."""
    from cam_core.engine.explainer import Explainer
    from cam_core.models.specs import read_specs

    name = args.model
    if name is None:
        name = next(iter(read_specs(Path(args.model_file)))) if args.model_file else "mobilenet_v2"
    return Explainer(name, weights=args.weights, models_file=args.model_file)


class ProgressLine:
    """A progress bar on one updating stderr line: `[ 3/10] 30% cat.jpg`."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, done: int, total: int, name: str) -> None:
        digits = len(str(total))
        line = f"[{done:>{digits}}/{total}] {100 * done / total:.0f}% {name}"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def end(self) -> None:
        """Move past the bar, if one was drawn."""
        if self.width:
            sys.stderr.write("\n")
            self.width = 0


def parse_params(card: MethodCard, pairs: list[str]) -> dict[str, object]:
    """NAME=VALUE pairs typed after the parameter's default (numbers, true/false, or text)."""
    known = {param.name: param for param in card.params}
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise CamError(f"--param wants NAME=VALUE, not {pair!r}")
        param = known.get(name.strip())
        if param is None:
            valid = ", ".join(known) or "none"
            raise CamError(f"method {card.id} has no parameter {name.strip()!r}; its parameters: {valid}")
        text = text.strip()
        try:
            if isinstance(param.default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value: object = text.lower() in ("true", "1", "yes")
            elif isinstance(param.default, int):
                value = int(text)
            elif isinstance(param.default, float):
                value = float(text)
            else:
                value = text
        except ValueError:
            kind = "true or false" if isinstance(param.default, bool) else type(param.default).__name__
            raise CamError(f"{card.id}: {name.strip()} must be {kind}, not {text!r}") from None
        params[param.name] = value
    return params
