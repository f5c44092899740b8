"""python -m cam_core: list models and methods, explain an image into .npz (and an overlay PNG), score methods
over a folder of images into a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cam_core.cli_options import ProgressLine, model_arguments, model_explainer, parse_params
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
    explain.add_argument("--method", help="a method id (see `methods`; default: gradcam)")
    explain.add_argument("--target", help="class index or name (default: the top-1 class)")
    explain.add_argument("--layer", help="target layer, a module name (default: the model's)")
    explain.add_argument("--layers", help="multi-layer methods: comma-separated layers, shallow to deep")
    explain.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a method parameter (repeatable)"
    )
    explain.add_argument("--sign", choices=("positive", "negative"), help="evidence for the class (positive, the "
                         "default) or against it")
    explain.add_argument("--manifest", metavar="JSON", help="re-run the map a manifest.json (or a download's zip) "
                         "records: model, method, class, layers, sign and parameters come from it (--weights: your "
                         "own weights it was made with)")
    explain.add_argument("--item", type=int, default=0, metavar="N", help="with --manifest: which of its maps "
                         "(default: the first)")
    explain.add_argument("--out", required=True, help="the .npz to write: saliency, raw, target, probs (and "
                         "NAME.manifest.json next to it)")
    explain.add_argument("--png", help="also write the overlay as a PNG")
    explain.add_argument("--alpha", type=float, default=0.5, help="opacity of the map in the PNG")
    explain.add_argument("--colormap", default=COLORMAPS[0], choices=COLORMAPS)
    from cam_core.figures.command import add_parser as add_figure_parser

    add_figure_parser(commands)
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
    from cam_core.provenance.manifest import manifest, write_manifest
    from cam_core.render.pictures import result_picture

    prefix = "example:"
    image = load_example(args.image[len(prefix) :]) if args.image.startswith(prefix) else load_image(args.image)
    explainer, result = _from_manifest(args, image) if args.manifest else _from_options(args, image)
    analysis = explainer.analyze(image)
    out = Path(args.out)
    out = out if out.suffix == ".npz" else out.with_name(f"{out.name}.npz")  # the name np.savez writes
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
    png = {"png": Path(args.png).name, "alpha": args.alpha, "colormap": args.colormap} if args.png else {}
    record = manifest(explainer, "cli-explain", [analysis.image], [result], names=[args.image],
                      outputs={"npz": out.name, **png})
    written = write_manifest(out, record, [args.png] if args.png else [])
    print(
        f"{result.method} for {result.target} {result.label} (p={result.probability:.3f}) at "
        f"{', '.join(result.layers)}: "
        f"{out}{' and ' + args.png if args.png else ''}, manifest {written}"
        + (f"; note: {result.note}" if result.note else "")
    )


def _from_options(args: argparse.Namespace, image):
    """The Explainer and map that --model, --method, --target, --layer(s), --sign and --param name."""
    from cam_core.registry import get_method

    explainer = model_explainer(args)
    method = args.method or "gradcam"
    target = None if args.target is None else explainer.class_index(args.target)
    params = parse_params(get_method(method).card, args.param)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    result = explainer.analyze(image).cam(method, target=target, layer=args.layer, sign=args.sign or "positive",
                                          layers=layers, **params)
    return explainer, result


def _from_manifest(args: argparse.Namespace, image):
    """The Explainer and map a manifest records, re-run on image (with --weights where given), on the torch thread
    count it was made with (which the map's last bits depend on)."""
    import torch

    from cam_core.provenance.manifest import read_manifest, rebuild, reproduce

    given = [f"--{name.replace('_', '-')}" for name in ("model", "model_file", "method", "target", "layer", "layers",
                                                        "param", "sign") if getattr(args, name)]
    if given:
        raise CamError(f"--manifest gives the model and the map; drop {', '.join(given)}")
    record = read_manifest(args.manifest)
    torch.set_num_threads(int(record.get("torch_threads") or torch.get_num_threads()))
    explainer = rebuild(record, args.weights)
    return explainer, reproduce(record, image, item=args.item, explainer=explainer)


def _evaluate(args: argparse.Namespace) -> None:
    from cam_core.evaluation.batch import evaluate_folder

    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    bar = ProgressLine()
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
    written = _evaluation_manifest(args, methods, summary.out)
    sys.stderr.write(
        f"{summary.evaluated} images evaluated, {summary.resumed} already in {summary.out}, "
        f"in {summary.seconds:.1f} s; manifest {written}\n"
    )


def _evaluation_manifest(args: argparse.Namespace, methods: list[str], out: Path) -> Path:
    """The manifest of an evaluation next to its CSV: the model, every readable image of the folder, the methods at
    their defaults and the settings."""
    from cam_core.engine.explainer import Explainer
    from cam_core.errors import ImageError
    from cam_core.evaluation.batch import image_files
    from cam_core.inputs.images import load_image
    from cam_core.provenance.manifest import manifest, method_defaults, write_manifest

    root = Path(args.folder)
    images, names = [], []
    for path in image_files(root):
        try:
            images.append(load_image(path))
        except (ImageError, OSError):
            continue
        names.append(path.relative_to(root).as_posix())
    settings = {"steps": args.steps, "baseline": args.baseline, "road": args.road, "labels_csv": args.labels,
                "boxes_csv": args.boxes, "threads": args.threads}
    return write_manifest(out, manifest(Explainer(args.model), "cli-evaluate", images, [], names=names,
                                        methods=method_defaults(methods), **settings))


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
        elif args.command == "figure":
            from cam_core.figures.command import run as run_figure

            run_figure(args)
        else:
            _explain(args)
    except CamError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"error: {exc.strerror or exc}: {exc.filename or ''}\n".replace(": \n", "\n"))
        return 2
    return 0
