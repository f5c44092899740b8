"""Pointing against boxes on hand-made maps: the pointing game's peak just inside or outside a box, its tolerance,
boxes of another image size, ties, blank maps; the energy share with overlapping boxes counted once; box checks; the
boxes CSV and the example photos' boxes drawn by eye."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cam_core import CamError
from cam_core.evaluation.boxes import example_boxes, read_boxes
from cam_core.evaluation.pointing import Box, box_mask, boxes_for, check_boxes, energy_share, pointing_hit
from cam_core.inputs.examples import examples, load_example
from cam_core.models.labels import label_set


def peak_map(row: int, column: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    values = np.full(shape, 0.1)
    values[row, column] = 1.0
    return values


@pytest.mark.parametrize(
    ("box", "hit"),
    [
        (Box(7, 2, 8, 3), True),  # the peak's pixel (centre 7.5, 2.5)
        (Box(0, 0, 7.5, 2.5), True),  # the centre on the corner counts
        (Box(0, 0, 7.49, 10), False),  # just left of it
        (Box(7.51, 0, 10, 10), False),  # just right of it
        (Box(0, 2.51, 10, 10), False),  # just below it
    ],
)
def test_the_peak_is_in_the_box_when_its_pixel_centre_is(box, hit):
    assert pointing_hit(peak_map(2, 7), [box]) is hit


def test_the_tolerance_is_the_distance_in_pixels_from_the_peak_to_a_box():
    saliency = peak_map(2, 7)
    beside = Box(8.5, 2, 10, 3)  # 1 pixel to the right of the centre 7.5
    diagonal = Box(10.5, 6.5, 12, 12)  # 3 right and 4 down: 5 pixels away
    assert not pointing_hit(saliency, [beside]) and pointing_hit(saliency, [beside], tolerance=1)
    assert not pointing_hit(saliency, [diagonal], tolerance=4) and pointing_hit(saliency, [diagonal], tolerance=5)
    with pytest.raises(CamError, match="tolerance must be at least 0"):
        pointing_hit(saliency, [beside], tolerance=-1)


def test_boxes_of_a_larger_image_are_scaled_to_the_map():
    # A 10×10 map of a 100 wide × 200 high image: the peak's pixel (row 2, column 7) is centred at x 75, y 50.
    saliency, size = peak_map(2, 7), (100, 200)
    assert pointing_hit(saliency, [Box(70, 40, 80, 60)], image_size=size)
    assert not pointing_hit(saliency, [Box(0, 0, 70, 40)], image_size=size)
    # The tolerance is in the image's pixels: x 80 is 5 of them from 75.
    assert not pointing_hit(saliency, [Box(80, 0, 100, 200)], image_size=size, tolerance=4)
    assert pointing_hit(saliency, [Box(80, 0, 100, 200)], image_size=size, tolerance=5)
    share = energy_share(saliency, [Box(0, 0, 50, 100)], image_size=size)  # the top-left 5×5 pixels, no peak
    assert share == pytest.approx(25 * 0.1 / (99 * 0.1 + 1.0))


def test_one_of_several_maxima_in_a_box_is_a_hit_and_a_blank_map_misses():
    saliency = peak_map(2, 7)
    saliency[8, 1] = 1.0
    assert pointing_hit(saliency, [Box(1, 8, 2, 9)]) and pointing_hit(saliency, [Box(7, 2, 8, 3)])
    assert not pointing_hit(saliency, [Box(4, 4, 6, 6)])
    assert not pointing_hit(np.zeros((10, 10)), [Box(0, 0, 10, 10)])
    assert not pointing_hit(np.full((10, 10), 0.5), [Box(0, 0, 10, 10)])
    assert not pointing_hit(saliency, [])


def test_the_energy_share_counts_overlapping_boxes_once():
    saliency = np.arange(16, dtype=float).reshape(4, 4)  # sums to 120
    top_left = Box(0, 0, 2, 2)  # values 0, 1, 4, 5
    right_column = Box(3, 0, 4, 4)  # values 3, 7, 11, 15
    assert energy_share(saliency, [top_left]) == pytest.approx(10 / 120)
    assert energy_share(saliency, [top_left, top_left, Box(0.5, 0.5, 1.5, 1.5)]) == pytest.approx(10 / 120)
    assert energy_share(saliency, [top_left, right_column]) == pytest.approx(46 / 120)
    assert energy_share(saliency, [Box(0, 0, 4, 4)]) == pytest.approx(1.0)
    assert energy_share(saliency, []) == 0.0
    assert math.isnan(energy_share(np.zeros((4, 4)), [top_left]))
    mask = box_mask([top_left, right_column], (4, 4))
    assert mask.sum() == 8 and mask[:2, :2].all() and mask[:, 3].all()


@pytest.mark.parametrize(
    ("saliency", "message"),
    [(np.ones(5), "non-empty \\(height, width\\)"), (-np.ones((2, 2)), "non-negative"),
     (np.full((2, 2), np.nan), "finite")],
)
def test_maps_that_are_not_maps_are_refused(saliency, message):
    with pytest.raises(CamError, match=message):
        energy_share(saliency, [Box(0, 0, 1, 1)])


def test_boxes_are_checked_against_the_image_and_clipped_to_it():
    assert check_boxes([Box(-5, 10, 120, 50, 3)], 100, 80) == [Box(0, 10, 100, 50, 3)]
    with pytest.raises(CamError, match="draw at least one box"):
        check_boxes([], 100, 80)
    with pytest.raises(CamError, match="is empty"):
        check_boxes([Box(10, 10, 10, 20)], 100, 80)
    with pytest.raises(CamError, match="outside the 100×80 image"):
        check_boxes([Box(100, 10, 130, 20)], 100, 80)


def test_the_boxes_of_a_class_include_those_for_any_class():
    dog, truck, anything = Box(0, 0, 1, 1, 248), Box(1, 1, 2, 2, 717), Box(2, 2, 3, 3)
    assert boxes_for([dog, truck, anything], 248) == [dog, anything]
    assert boxes_for([dog, truck], 1) == []


def test_a_boxes_file_by_index_name_or_any_class(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("file,label,x0,y0,x1,y1\ndog.jpg,248,1,2,3,4\n\n./dog.jpg,pickup,5,6,7.5,8\nsub\\cat.png,,0,0,9,9\n")
    assert read_boxes(path, label_set("imagenet1k")) == {
        "dog.jpg": [Box(1, 2, 3, 4, 248), Box(5, 6, 7.5, 8, 717)],
        "sub/cat.png": [Box(0, 0, 9, 9, None)],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label\na.jpg,1\n", "must start with the header file,label,x0,y0,x1,y1"),
        ("file,label,x0,y0,x1,y1\na.jpg,1,0,0,1\n", "line 2: wants file,label,x0,y0,x1,y1"),
        ("file,label,x0,y0,x1,y1\na.jpg,1,0,0,1,1\na.jpg,dog,0,0,1,1\n", "line 3: no class 'dog'"),
        ("file,label,x0,y0,x1,y1\na.jpg,1,0,zero,1,1\n", "line 2: the corners x0,y0,x1,y1 must be numbers"),
        ("file,label,x0,y0,x1,y1\na.jpg,1,5,0,1,1\n", "line 2: a box needs finite corners with x0 < x1"),
        ("file,label,x0,y0,x1,y1\na.jpg,1,0,0,inf,1\n", "line 2: a box needs finite corners"),
    ],
)
def test_bad_boxes_files_name_the_row(text, message, tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    with pytest.raises(CamError, match=message):
        read_boxes(path, label_set("imagenet1k"))


def test_every_example_photo_has_boxes_inside_it_with_known_classes():
    found = examples()
    assert set(found) >= {"chelsea", "coffee", "astronaut", "rocket"}
    for name in found:
        boxes = example_boxes(name)
        photo = load_example(name)
        assert boxes and check_boxes(boxes, photo.width, photo.height) == boxes, name
        assert all(box.label is None or 0 <= box.label < 1000 for box in boxes)
    assert example_boxes("no such photo") == []


def test_grad_cam_points_at_the_eagle_and_past_the_setter_at_the_horse(mobilenet):
    if not {"eagle", "person"} <= set(examples()):
        pytest.skip("Debian package darknet (eagle.jpg, person.jpg) is not installed")
    photo = load_example("eagle")
    result = mobilenet.analyze(photo).cam("gradcam")
    eagle = boxes_for(example_boxes("eagle"), result.target)
    assert result.label == "bald eagle" and len(eagle) == 1 and pointing_hit(result.saliency, eagle)
    area = (eagle[0].x1 - eagle[0].x0) * (eagle[0].y1 - eagle[0].y0) / (photo.width * photo.height)
    assert energy_share(result.saliency, eagle) > 1.4 * area
    # person.jpg: the top class is a dog's (English setter), but its Grad-CAM map peaks on the horse.
    result = mobilenet.analyze(load_example("person")).cam("gradcam")
    boxes = example_boxes("person")
    assert result.label == "English setter"
    assert not pointing_hit(result.saliency, boxes_for(boxes, result.target))
    assert pointing_hit(result.saliency, boxes_for(boxes, mobilenet.class_index("sorrel")))
