"""Figures of images × methods: what the grid holds, one progress callback over every cell, the Analysis caches
reused, and the PNG, PDF and SVG files (size from DPI and cell size, embedded maps, text as text)."""

from __future__ import annotations

import io
import subprocess
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from cam_core import CamError
from cam_core.figures import Column, Layout, Row, compute_maps, draw, export, format_of, grid_shape
from cam_core.figures.export import cell_picture
from cam_core.render.pictures import result_picture
from tests.conftest import count_passes

METHODS = ("gradcam", "eigencam", "guidedbackprop")  # a gradient map, a gradient-free map, an RGB gradient picture
SVG = "{http://www.w3.org/2000/svg}"


def small(image: Image.Image, width: int) -> Image.Image:
    return image.resize((width, round(image.height * width / image.width)))


@pytest.fixture(scope="module")
def rows(chelsea, coffee) -> list[Row]:
    """Two images, the first twice with two classes (widths no other test uses, so their Analyses are new)."""
    cat = small(chelsea, 203)
    return [Row(cat, "cat"), Row(small(coffee, 197), "coffee"), Row(cat, "cat", "tabby")]


@pytest.fixture(scope="module")
def computed(mobilenet, rows):
    """The maps, the progress calls and the model passes of a first and a second computation of the same figure."""
    calls: list[tuple[int, int, str]] = []
    columns = [Column(m) for m in METHODS]
    with count_passes(mobilenet.model.module) as first:
        maps = compute_maps(mobilenet, rows, columns, lambda *call: calls.append(call))
    with count_passes(mobilenet.model.module) as second:
        again = compute_maps(mobilenet, rows, columns)
    return {"maps": maps, "again": again, "calls": calls, "first": len(first), "second": len(second)}


def test_rows_hold_their_class_top_1_by_default_and_the_same_image_twice(computed, mobilenet):
    maps = computed["maps"]
    tabby = mobilenet.class_index("tabby")
    assert [row[0].target for row in maps.results] == [maps.results[0][0].target,
                                                       maps.results[1][0].target, tabby]
    assert maps.results[0][0].target != tabby  # the top-1 class of the cat is another cat
    assert [[r.method for r in row] for row in maps.results] == [list(METHODS)] * 3
    record = maps.record()
    assert [r["image"] for r in record["rows"]] == ["cat", "coffee", "cat"]
    assert record["rows"][2]["label"] == "tabby"
    assert [m["id"] for m in record["methods"]] == list(METHODS)
    assert record["methods"][0]["params"] == {"layer": mobilenet.default_layer}


def test_progress_is_called_once_per_cell_in_order(computed):
    calls = computed["calls"]
    assert [(done, total) for done, total, _ in calls] == [(i, 9) for i in range(1, 10)]
    assert calls[0][2] == "Grad-CAM · cat" and calls[-1][2] == "Guided Backpropagation · cat"


def test_a_second_computation_runs_no_model_pass(computed):
    assert computed["first"] > 0
    assert computed["second"] == 0
    for row, again in zip(computed["maps"].results, computed["again"].results, strict=True):
        for result, same in zip(row, again, strict=True):
            np.testing.assert_array_equal(result.raw, same.raw)


def test_methods_and_classes_are_checked_before_any_work(mobilenet, rows):
    with pytest.raises(CamError, match="cannot run on mobilenet_v2"):
        compute_maps(mobilenet, rows, [Column("gradcam"), Column("rollout")])
    with pytest.raises(CamError, match="at least one image"):
        compute_maps(mobilenet, [], [Column("gradcam")])
    with pytest.raises(CamError, match="at least one method"):
        compute_maps(mobilenet, rows, [])
    with pytest.raises(CamError, match="no class is called"):
        compute_maps(mobilenet, [Row(rows[0].image, "cat", "no such class")], [Column("gradcam")])


@pytest.mark.parametrize("options, message", [
    ({"cell": 0.1}, "cell size"), ({"colormap": "rainbow"}, "colour map"), ({"view": "signed"}, "view"),
    ({"alpha": 2}, "opacity"), ({"colorbar": "left"}, "colour bar"), ({"dpi": 5}, "DPI"),
])
def test_bad_layout_options_are_clear_errors(options, message):
    with pytest.raises(CamError, match=message):
        Layout(**options)


def test_the_format_comes_from_the_suffix():
    assert [format_of(name) for name in ("a.png", "b.PDF", "dir.v2/c.svg")] == ["png", "pdf", "svg"]
    with pytest.raises(CamError, match="suffix"):
        format_of("figure.jpg")


@pytest.mark.parametrize("raw, colorbar, columns, bars", [
    (False, "none", 3, 0), (True, "none", 4, 0), (True, "column", 5, 3), (False, "cell", 3, 9),
])
def test_the_grid_has_a_row_per_image_and_its_raw_and_colour_bar_columns(computed, raw, colorbar, columns, bars):
    maps, layout = computed["maps"], Layout(raw_column=raw, colorbar=colorbar)
    grid = grid_shape(maps, layout)
    assert (grid.rows, grid.columns) == (3, columns)
    figure = draw(maps, layout)
    pictures = [axes for axes in figure.axes if axes.images]
    assert len(pictures) == 3 * (raw + 3)
    assert len(figure.axes) - len(pictures) == bars  # every other axes holds a colour bar
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert titles == ["image"] * raw + ["Grad-CAM", "Eigen-CAM", "Guided Backpropagation"]
    labels = [axes.get_ylabel() for axes in figure.axes if axes.get_ylabel()]
    assert labels[2] == "tabby" and len(labels) == 3


def test_cells_are_drawn_with_the_dashboards_colours(computed):
    maps = computed["maps"]
    layout = Layout(view="map", colormap="inferno")  # 1.6 in × 200 DPI: wider than the image, kept as it is
    result = maps.results[0][0]
    expected = result_picture(maps.images[0], result.saliency, result.raw, "map", 0.5, "inferno")
    np.testing.assert_array_equal(np.asarray(cell_picture(maps.images[0], result, layout)), np.asarray(expected))


def test_png_size_follows_dpi_and_cell_size(computed):
    maps = computed["maps"]
    sizes = {(cell, dpi): Image.open(io.BytesIO(export(maps, Layout(cell=cell, dpi=dpi), "png"))).size
             for cell, dpi in ((1.0, 60), (1.0, 120), (2.0, 60))}
    (w1, h1), (w2, h2), (w3, h3) = sizes[1.0, 60], sizes[1.0, 120], sizes[2.0, 60]
    assert abs(w2 - 2 * w1) <= 2 and abs(h2 - 2 * h1) <= 2
    assert abs((w3 - w1) - 4 * 1.0 * 60) <= 2  # four image columns, each one inch wider
    assert h3 - h1 > 100  # three rows of about 2:3, each two thirds of an inch taller


@pytest.fixture(scope="module")
def pdf(computed, tmp_path_factory):
    path = tmp_path_factory.mktemp("figure") / "figure.pdf"
    path.write_bytes(export(computed["maps"], Layout(cell=1.0, dpi=100, colorbar="cell"), "pdf"))
    return path


def test_the_pdf_renders_and_embeds_every_map_as_an_image(pdf):
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(pdf.with_suffix(""))], check=True)
    page = Image.open(pdf.with_name("figure-1.png"))
    assert page.width > 200 and np.asarray(page).std() > 20  # drawn, not blank
    listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    sizes = [(int(line.split()[3]), int(line.split()[4])) for line in listed.splitlines()[2:]]
    assert len(sizes) == 12 + 9  # 3 rows × (the image + 3 maps), and a colour bar under each map
    pictures = sorted(sizes, key=lambda size: size[1])[-12:]
    assert {width for width, _ in pictures} == {100} and min(h for _, h in pictures) > 60  # at 100 DPI of 1 inch
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Grad-CAM" in text and "tabby" in text


def test_the_svg_is_xml_with_images_and_text(computed):
    data = export(computed["maps"], Layout(cell=1.0, dpi=60), "svg")
    root = ElementTree.fromstring(data)
    images = root.findall(f".//{SVG}image")
    assert len(images) == 12 and all(i.get("{http://www.w3.org/1999/xlink}href", "").startswith("data:image/png")
                                     for i in images)
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert {"Grad-CAM", "Eigen-CAM", "tabby"} <= set(texts)


def test_a_figure_saves_to_the_same_bytes_twice(computed):
    layout = Layout(cell=0.8, dpi=60)
    assert export(computed["maps"], layout, "pdf") == export(computed["maps"], layout, "pdf")
