"""python -m cam_core figure IMAGES... --methods ... --out fig.pdf: a figure of images × methods written by a
script, with its manifest next to it."""

from __future__ import annotations

import argparse
from pathlib import Path

from cam_core.cli_options import ProgressLine, model_arguments, model_explainer, parse_params
from cam_core.errors import CamError
from cam_core.figures.export import export
from cam_core.figures.layout import COLORBARS, VIEWS, Layout, format_of
from cam_core.figures.rows import DEFAULT_METHODS, Column, Row, compute_maps
from cam_core.render.pictures import COLORMAPS

EXAMPLE = "example:"
TOP = "top"  # a --targets entry for the top-1 class


def add_parser(commands) -> None:
    """The figure subcommand and its options (the Figure page's, one for one)."""
    defaults = Layout()
    figure = commands.add_parser("figure", help="a figure of images (rows) × methods (columns) as PNG, PDF or SVG, "
                                 "with NAME.manifest.json next to it")
    figure.add_argument("images", nargs="+", metavar="IMAGE", help="image files or example:NAME (see `examples`); "
                        "an image given twice with two --targets gets two rows")
    model_arguments(figure)
    figure.add_argument("--methods", default=",".join(DEFAULT_METHODS), metavar="ID,ID",
                        help=f"method ids, one column each (default: {','.join(DEFAULT_METHODS)})")
    figure.add_argument("--targets", metavar="T,T", help=f"one class per image (index or name; '{TOP}' or empty: "
                        "the top-1 class); default: every image's top-1 class")
    figure.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="a method parameter, also METHOD.layer=NAME or METHOD.layers=A,B (repeatable)")
    figure.add_argument("--out", required=True, help="the figure to write: .png, .pdf or .svg")
    figure.add_argument("--cell", type=float, default=defaults.cell, help="width of one map in inches")
    figure.add_argument("--spacing", type=float, default=defaults.spacing, help="space between maps in inches")
    figure.add_argument("--colormap", default=defaults.colormap, choices=COLORMAPS)
    figure.add_argument("--view", default=defaults.view, choices=VIEWS, help="the map over the image, or alone")
    figure.add_argument("--alpha", type=float, default=defaults.alpha, help="opacity of the map over the image")
    figure.add_argument("--font-size", type=float, default=defaults.font_size, help="in points")
    figure.add_argument("--dpi", type=int, default=defaults.dpi, help="PNG resolution, and the resolution the maps "
                        "are embedded at in PDF and SVG")
    figure.add_argument("--raw-column", action=argparse.BooleanOptionalAction, default=defaults.raw_column,
                        help="a first column of the images themselves")
    figure.add_argument("--colorbar", nargs="?", const="column", default=defaults.colorbar, choices=COLORBARS,
                        help="column: one bar at the end of each row (each map from its lowest to its highest "
                        "value); cell: a bar of its real values under every map")
    figure.add_argument("--titles", action=argparse.BooleanOptionalAction, default=defaults.titles,
                        help="the method names above the columns")
    figure.add_argument("--image-names", action="store_true", help="each row's image name under its class label")


def _image(source: str):
    from cam_core.inputs.examples import load_example
    from cam_core.inputs.images import load_image

    return load_example(source[len(EXAMPLE):]) if source.startswith(EXAMPLE) else load_image(source)


def rows_of(images: list[str], targets: str | None) -> list[Row]:
    """A row per image, with its class from targets (comma-separated, one per image)."""
    wanted = [None] * len(images) if targets is None else [t.strip() for t in targets.split(",")]
    if len(wanted) != len(images):
        raise CamError(f"--targets gives {len(wanted)} classes for {len(images)} images: give one per image")
    rows = []
    for source, target in zip(images, wanted, strict=True):
        name = source[len(EXAMPLE):] if source.startswith(EXAMPLE) else Path(source).name
        chosen = None if not target or target == TOP else int(target) if target.isdigit() else target
        rows.append(Row(_image(source), name, chosen))
    return rows


def columns_of(methods: str, pairs: list[str]) -> list[Column]:
    """A column per method id, with the --param METHOD.NAME=VALUE pairs that name it."""
    from cam_core.registry import get_method

    ids = [method.strip() for method in methods.split(",") if method.strip()]
    for pair in pairs:
        method = pair.partition("=")[0].partition(".")[0].strip()
        if "." not in pair.partition("=")[0] or method not in ids:
            raise CamError(f"--param wants METHOD.NAME=VALUE for one of --methods ({', '.join(ids)}), not {pair!r}")
    columns = []
    for method in ids:
        card = get_method(method).card
        mine = [pair.partition(".")[2] for pair in pairs if pair.partition(".")[0].strip() == method]
        layers = {name.strip(): value.strip() for name, _, value in (p.partition("=") for p in mine)
                  if name.strip() in ("layer", "layers")}
        params = parse_params(card, [p for p in mine if p.partition("=")[0].strip() not in ("layer", "layers")])
        if "layers" in layers:
            params["layers"] = [name.strip() for name in layers["layers"].split(",") if name.strip()]
        if "layer" in layers:
            params["layer"] = layers["layer"]
        columns.append(Column(method, params))
    return columns


def run(args: argparse.Namespace) -> None:
    """Compute the figure's maps, write it in the format its suffix names, and its manifest next to it."""
    from cam_core.provenance.manifest import manifest, write_manifest

    fmt = format_of(args.out)
    if not Path(args.out).resolve().parent.is_dir():
        raise CamError(f"the folder of --out {args.out} does not exist")
    layout = Layout(cell=args.cell, spacing=args.spacing, colormap=args.colormap, view=args.view, alpha=args.alpha,
                    font_size=args.font_size, raw_column=args.raw_column, colorbar=args.colorbar,
                    titles=args.titles, image_names=args.image_names, dpi=args.dpi)
    rows, columns = rows_of(args.images, args.targets), columns_of(args.methods, args.param)
    explainer = model_explainer(args)
    bar = ProgressLine()
    try:
        maps = compute_maps(explainer, rows, columns, bar)
    finally:
        bar.end()
    out = Path(args.out)
    out.write_bytes(export(maps, layout, fmt))
    per_row = len(columns)
    record = manifest(explainer, "figure", list(maps.images), maps.flat(), names=[row.name for row in rows],
                      image_of=[index // per_row for index in range(len(rows) * per_row)],
                      figure={"layout": layout.record(), "format": fmt, **maps.record()})
    written = write_manifest(out, record)
    print(f"{len(rows)} rows × {len(columns)} methods: {out} ({out.stat().st_size} bytes), manifest {written}")
