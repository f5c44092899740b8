"""python -m cam_core: list models and methods, explain an image into .npz (and an overlay PNG), score methods
over a folder of images into a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cam_core.errors import CamError
from cam_core.evaluation.metrics import BASELINES
from cam_core.evaluation.scoring import DEFAULT_BASELINE, DEFAULT_STEPS
from cam_core.render.pictures import COLORMAPS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit code 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cam_core", description="Class activation maps for image classifiers.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("models", help="the models of models.yaml, one a line: name, offline?, title")
    listing = commands.add_parser("methods", help="the CAM methods, one a line: id, family, cost, name")
    listing.add_argument("--markdown", action="store_true", help="the README's method table, from the method cards")
    commands.add_parser("examples", help="the bundled example photos, one a line: name, description")
    explain = commands.add_parser("explain", help="explain one image with one method")
    explain.add_argument("image", help="an image file, or example:NAME for a bundled photo (see `examples`)")
    model_arguments(explain)
    explain.add_argument("--method", default="gradcam", help="a method id (see `methods`)")
    explain.add_argument("--target", help="class index or name (default: the top-1 class)")
    explain.add_argument("--layer", help="target layer, a module name (default: the model's)")
    explain.add_argument("--layers", help="multi-layer methods: comma-separated layers, shallow to deep")
    explain.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a method parameter (repeatable)"
    )
    explain.add_argument("--sign", default="positive", choices=("positive", "negative"))
    explain.add_argument("--out", required=True, help="the .npz to write: saliency, raw, target, probs")
    explain.add_argument("--png", help="also write the overlay as a PNG")
    explain.add_argument("--alpha", type=float, default=0.5, help="opacity of the map in the PNG")
    explain.add_argument("--colormap", default=COLORMAPS[0], choices=COLORMAPS)
    evaluate = commands.add_parser(
        "evaluate",
        help="score methods' maps on every image of a folder (deletion, insertion, drop, pointing, sparsity) into a "
        "CSV, and print each metric's mean with a bootstrap 95%% interval",
    )
    evaluate.add_argument("folder", metavar="DIR", help="a folder of images (searched recursively)")
    evaluate.add_argument("--model", default="mobilenet_v2", metavar="NAME", help="a model name from models.yaml")
    evaluate.add_argument("--methods", default="gradcam", metavar="ID,ID", help="method ids (see `methods`)")
    evaluate.add_argument("--out", required=True, metavar="CSV", help="the CSV to write; its rows are not redone")
    evaluate.add_argument("--labels", metavar="CSV", help="file,label rows (class index or name); default: top-1")
    evaluate.add_argument(
        "--boxes", metavar="CSV", help="file,label,x0,y0,x1,y1 rows: object boxes for the pointing game (label empty: "
        "any class)"
    )
    evaluate.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, metavar="N", help="steps of the deletion/insertion curves"
    )
    evaluate.add_argument("--baseline", default=DEFAULT_BASELINE, choices=BASELINES,
                          help="what removed pixels become (rise: zeros for deletion, a blurred copy for insertion)")
    evaluate.add_argument(
        "--road", action="store_true", help="also ROAD's MoRF and LeRF AUCs (18 imputed passes per map: slow)"
    )
    evaluate.add_argument("--ray", action="store_true", help="one Ray task per image (also when RAY_ADDRESS is set)")
    evaluate.add_argument("--address", metavar="ADDR", help="a Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    evaluate.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads per image, here and in each Ray task (default: this process's; the same count gives "
        "the same bits)",
    )
    return parser


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --model-file and --weights: which model explains (every command that explains takes them)."""
    parser.add_argument("--model", help="a model name from models.yaml (default: mobilenet_v2, or the first entry "
                        "of --model-file)")
    parser.add_argument("--model-file", metavar="YAML", help="a models.yaml of yours, such as the fragment the "
                        "dashboard's Your model panel downloads")
    parser.add_argument("--weights", help="your own weights: a safetensors or state_dict file")


def model_explainer(args: argparse.Namespace):
    """The Explainer that --model, --model-file and --weights name."""
    from cam_core.engine.explainer import Explainer
    from cam_core.models.specs import read_specs

    name = args.model
    if name is None:
        name = next(iter(read_specs(Path(args.model_file)))) if args.model_file else "mobilenet_v2"
    return Explainer(name, weights=args.weights, models_file=args.model_file)


def _models() -> None:
    from cam_core.models.specs import read_specs

    for name, spec in read_specs().items():
        print(f"{name}\t{'offline' if spec.embedded else 'download'}\t{spec.title}")


def _methods(markdown: bool) -> None:
    from cam_core.methods.catalogue import markdown_table
    from cam_core.registry import methods

    if markdown:
        print(markdown_table())
        return
    for card in methods():
        print(f"{card.id}\t{card.family}\t{card.cost}\t{card.name}")


def _examples() -> None:
    from cam_core.inputs.examples import examples

    for name, (description, _) in examples().items():
        print(f"{name}\t{description}")


def _explain(args: argparse.Namespace) -> None:
    from cam_core.inputs.examples import load_example
    from cam_core.inputs.images import load_image
    from cam_core.registry import get_method
    from cam_core.render.pictures import result_picture

    prefix = "example:"
    image = load_example(args.image[len(prefix) :]) if args.image.startswith(prefix) else load_image(args.image)
    explainer = model_explainer(args)
    analysis = explainer.analyze(image)
    target = None if args.target is None else explainer.class_index(args.target)
    params = _parse_params(get_method(args.method).card, args.param)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    result = analysis.cam(args.method, target=target, layer=args.layer, sign=args.sign, layers=layers, **params)
    out = Path(args.out)
    np.savez(
        out,
        saliency=result.saliency,
        raw=result.raw,
        target=np.int64(result.target),
        probs=analysis.probabilities.numpy(),
        **({} if result.rgb is None else {"rgb": result.rgb}),
    )
    if args.png:
        picture = result_picture(
            analysis.image, result.saliency, result.raw, "overlay", args.alpha, args.colormap, result.rgb
        )
        picture.save(args.png)
    print(
        f"{result.method} for {result.target} {result.label} (p={result.probability:.3f}) at "
        f"{', '.join(result.layers)}: "
        f"{out}{' and ' + args.png if args.png else ''}"
        + (f"; note: {result.note}" if result.note else "")
    )


def _evaluate(args: argparse.Namespace) -> None:
    from cam_core.evaluation.batch import evaluate_folder

    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    bar = _ProgressLine()
    try:
        summary = evaluate_folder(
            args.folder,
            args.model,
            methods,
            args.out,
            labels_csv=args.labels,
            boxes_csv=args.boxes,
            road=args.road,
            steps=args.steps,
            baseline=args.baseline,
            use_ray=args.ray,
            address=args.address,
            threads=args.threads,
            progress=bar,
        )
    except KeyboardInterrupt:
        bar.end()
        sys.stderr.write(f"interrupted: the rows written so far stay in {args.out}; run again to resume\n")
        raise SystemExit(130) from None
    finally:
        bar.end()
    print(summary.table())
    sys.stderr.write(
        f"{summary.evaluated} images evaluated, {summary.resumed} already in {summary.out}, "
        f"in {summary.seconds:.1f} s\n"
    )


class _ProgressLine:
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


def _parse_params(card, pairs: list[str]) -> dict[str, object]:
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; 0 on success, 2 with one line on stderr for bad input."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            _models()
        elif args.command == "methods":
            _methods(args.markdown)
        elif args.command == "examples":
            _examples()
        elif args.command == "evaluate":
            _evaluate(args)
        else:
            _explain(args)
    except CamError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"error: {exc.strerror or exc}: {exc.filename or ''}\n".replace(": \n", "\n"))
        return 2
    return 0
