"""Batch evaluation of a folder: rows per (image, method), labels, boxes and the pointing columns, sparsity, broken
images, resuming (also a CSV of an earlier layout), the CLI, the summary's bootstrap intervals and clear bests, and
byte-identical CSVs from this process and from local Ray."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from cam_core import CamError
from cam_core.evaluation import batch
from cam_core.evaluation.batch import ADDED_COLUMNS, COLUMNS, METRICS, evaluate_folder, image_files, read_labels
from cam_core.evaluation.intervals import Interval, bootstrap_interval
from cam_core.evaluation.pointing import POINTING_TOLERANCE, Box, energy_share, pointing_hit
from cam_core.evaluation.sparsity import entropy, gini
from cam_core.inputs.images import READABLE
from cam_core.models.labels import label_set
from tests.conftest import run_cli

METHODS = ["gradcam", "layercam"]
STEPS = 5
NAMES = ["bad.jpg", "chelsea.jpg", "drinks/coffee.PNG"]


@pytest.fixture(scope="module", autouse=True)
def no_ray_address():
    """Runs here stay here even where RAY_ADDRESS is set (it sends every run to Ray)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory, chelsea, coffee) -> Path:
    root = tmp_path_factory.mktemp("photos")
    chelsea.save(root / "chelsea.jpg", quality=95)
    (root / "drinks").mkdir()
    coffee.save(root / "drinks" / "coffee.PNG")
    (root / "bad.jpg").write_text("this is not a picture")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def full(folder, tmp_path_factory) -> tuple[Path, batch.Summary]:
    """The whole folder evaluated in this process."""
    out = tmp_path_factory.mktemp("local") / "results.csv"
    return out, evaluate_folder(folder, "mobilenet_v2", METHODS, out, steps=STEPS)


def read(out: Path) -> list[dict[str, str]]:
    with out.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_image_files_are_found_recursively_and_sorted(folder, tmp_path):
    assert [path.relative_to(folder).as_posix() for path in image_files(folder)] == NAMES
    with pytest.raises(CamError, match="no images"):
        image_files(tmp_path)
    with pytest.raises(CamError, match="not found"):
        image_files(tmp_path / "missing")


def test_one_row_per_image_and_method_with_the_top_class(full, folder, mobilenet):
    out, _ = full
    rows = read(out)
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert [(row["image"], row["method"]) for row in rows] == [(name, m) for name in NAMES for m in METHODS]
    for name in NAMES[1:]:
        top = mobilenet.analyze(folder / name).top_k(1)[0]
        for row in (row for row in rows if row["image"] == name):
            assert (int(row["target"]), row["label"]) == top[:2]
            assert float(row["probability"]) == pytest.approx(top[2], abs=1e-6)
            assert row["model"] == "mobilenet_v2" and row["error"] == "" and row["increase"] in ("0", "1")
            assert row["pointing"] == row["energy"] == ""  # no boxes given
            for column in ("probability", "deletion_auc", "insertion_auc", "drop_percent", "explained_probability",
                           "gini", "entropy"):
                assert len(row[column].split(".")[1]) == 6, row
            assert float(row["deletion_auc"]) < float(row["insertion_auc"])


def test_a_broken_image_gives_error_rows_and_the_run_goes_on(full):
    out, summary = full
    broken = [row for row in read(out) if row["image"] == "bad.jpg"]
    assert [row["method"] for row in broken] == METHODS
    for row in broken:
        assert row["error"] == f"bad.jpg is not an image this tool can read (it reads {READABLE})"
        assert (row["steps"], row["baseline"]) == (str(STEPS), "rise")
        assert all(row[column] == "" for column in COLUMNS[5:-1])
    assert [(item.images, item.errors) for item in summary.methods] == [(2, 1), (2, 1)]


def test_the_summary_is_each_metrics_mean_and_bootstrap_interval_over_the_csv(full):
    out, summary = full
    rows = read(out)
    assert [item.method for item in summary.methods] == METHODS
    assert (summary.evaluated, summary.resumed) == (3, 0) and summary.seconds > 0
    for item in summary.methods:
        scored = [row for row in rows if row["method"] == item.method and not row["error"]]
        for metric in METRICS:
            values = [metric.scale * float(row[metric.column]) for row in scored if row[metric.column]]
            assert item.scores[metric.column] == bootstrap_interval(values), metric
        assert item.scores["pointing"].count == 0  # no boxes
    assert summary.methods[0].scores["increase"].mean in (0, 50, 100)
    table = summary.table().splitlines()
    assert table[1].split() == ["metric", *METHODS, "best"]
    assert table[2].split() == ["images", "2", "2"] and table[3].split() == ["errors", "1", "1"]
    deletion = summary.methods[0].scores["deletion_auc"]
    assert table[4].startswith("deletion AUC ↓ ")
    assert f"{deletion.mean:.4f} [{deletion.low:.4f}, {deletion.high:.4f}]" in table[4]
    assert "pointing game % ↑" in table[8] and table[8].split()[4:6] == ["n/a", "n/a"]
    for line, metric in zip(table[4:], METRICS, strict=True):
        verdict = summary.best.get(metric.column) or "no clear difference"
        if metric.column in ("pointing", "energy", "road_morf_auc", "road_lerf_auc"):  # no boxes, no ROAD
            verdict = "not computed"
        assert line.endswith(verdict) if metric.better else not line.endswith(("difference", "interval")), line


def test_a_clear_best_only_where_the_intervals_separate(full):
    _, summary = full
    worse, better = summary.methods
    scores = dict(worse.scores, deletion_auc=Interval(0.30, 0.25, 0.35, 2))
    shifted = [batch.MethodSummary(worse.method, 2, 1, scores),
               batch.MethodSummary(better.method, 2, 1, dict(better.scores, deletion_auc=Interval(0.1, 0.05, 0.2, 2)))]
    clear = batch.Summary(summary.model, summary.out, shifted, 0, 3, 0.0)
    assert clear.best["deletion_auc"] == better.method
    assert clear.table().splitlines()[4].endswith(f"  {better.method}")
    overlapping = dict(better.scores, deletion_auc=Interval(0.28, 0.2, 0.31, 2))
    shifted[1] = batch.MethodSummary(better.method, 2, 1, overlapping)
    assert batch.Summary(summary.model, summary.out, shifted, 0, 3, 0.0).best["deletion_auc"] is None
    shifted[1] = batch.MethodSummary(better.method, 1, 2, dict(better.scores, deletion_auc=Interval(0.1, 0.1, 0.1, 1)))
    single = batch.Summary(summary.model, summary.out, shifted, 0, 3, 0.0)
    assert single.best["deletion_auc"] is None
    assert single.table().splitlines()[4].endswith("too few images for an interval")
    assert "gini" not in clear.best and "entropy" not in clear.best  # descriptions, not scores


def test_boxes_give_the_pointing_columns_for_their_class(folder, tmp_path, mobilenet):
    boxes = tmp_path / "boxes.csv"
    # chelsea.jpg: the cat's face (its top class is Egyptian cat); coffee.PNG: a box for "cup", not its top class.
    boxes.write_text("file,label,x0,y0,x1,y1\nchelsea.jpg,285,120,60,360,300\nchelsea.jpg,,0,0,60,60\n"
                     "drinks/coffee.PNG,cup,170,15,412,305\n")
    out = tmp_path / "boxed.csv"
    summary = evaluate_folder(folder, "mobilenet_v2", ["gradcam"], out, steps=1, boxes_csv=boxes)
    rows = {row["image"]: row for row in read(out)}
    cat = rows["chelsea.jpg"]
    saliency = mobilenet.analyze(folder / "chelsea.jpg").cam("gradcam").saliency
    own = [Box(120, 60, 360, 300, 285), Box(0, 0, 60, 60)]
    assert cat["pointing"] == str(int(pointing_hit(saliency, own, tolerance=POINTING_TOLERANCE)))
    assert float(cat["energy"]) == pytest.approx(energy_share(saliency, own), abs=1e-6)
    assert 0.5 < float(cat["energy"]) < 1
    assert float(cat["gini"]) == pytest.approx(gini(saliency), abs=1e-6)
    assert float(cat["entropy"]) == pytest.approx(entropy(saliency), abs=1e-6)
    coffee = rows["drinks/coffee.PNG"]
    assert coffee["label"] == "espresso" and coffee["pointing"] == coffee["energy"] == "" and coffee["gini"]
    assert summary.methods[0].scores["pointing"].count == 1
    assert "(n=1)" in summary.table().splitlines()[8]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label,x0,y0,x1,y1\nmissing.jpg,,0,0,1,1\n", "boxes file .* names missing.jpg, which is not an image"),
        ("file,label,x0,y0,x1,y1\nchelsea.jpg,,500,0,600,10\n", "the boxes of chelsea.jpg: the box .* is outside"),
    ],
)
def test_boxes_for_other_images_or_outside_the_image_are_refused(text, message, folder, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(text)
    with pytest.raises(CamError, match=message):
        evaluate_folder(folder, "mobilenet_v2", ["gradcam"], tmp_path / "o.csv", steps=1, boxes_csv=boxes)


def test_road_fills_its_columns_and_redoes_the_pairs_without_them(full, folder, tmp_path):
    complete, _ = full
    root = tmp_path / "one"
    root.mkdir()
    (root / "chelsea.jpg").write_bytes((folder / "chelsea.jpg").read_bytes())
    out = tmp_path / "road.csv"
    lines = complete.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[3])  # chelsea.jpg's gradcam row, without ROAD
    assert read(out)[0]["road_morf_auc"] == ""
    fractions = (0.5, 0.9)  # two of ROAD's points keep the test short
    summary = evaluate_folder(root, "mobilenet_v2", ["gradcam"], out, steps=STEPS, road=fractions)
    rows = read(out)
    assert rows[0]["method"] == "gradcam" and rows[0]["image"] == "chelsea.jpg"
    assert summary.evaluated == 1 and len(rows) == 2 and rows[0]["deletion_auc"] == rows[1]["deletion_auc"]
    morf, lerf = float(rows[1]["road_morf_auc"]), float(rows[1]["road_lerf_auc"])
    assert 0 <= morf < lerf <= 0.4  # removing the most relevant pixels first hurts more
    assert summary.methods[0].scores["road_morf_auc"] == Interval(morf, morf, morf, 1)  # the newest row counts
    again = evaluate_folder(root, "mobilenet_v2", ["gradcam"], out, steps=STEPS, road=fractions)
    assert again.evaluated == 0 and len(read(out)) == 2


def test_a_csv_of_the_earlier_layout_is_resumed_in_todays_columns(full, folder, tmp_path):
    complete, _ = full
    rows = read(complete)
    earlier = [column for column in COLUMNS if column not in ADDED_COLUMNS]
    out = tmp_path / "earlier.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, earlier, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[:-1])  # coffee's layercam row is missing
    summary = evaluate_folder(folder, "mobilenet_v2", METHODS, out, steps=STEPS)
    assert (summary.evaluated, summary.resumed) == (1, 2)
    again = read(out)
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert again[-1] == rows[-1]
    assert all(row[column] == "" for row in again[:-1] for column in ADDED_COLUMNS)
    assert [{c: row[c] for c in earlier} for row in again] == [{c: row[c] for c in earlier} for row in rows]
    assert summary.methods[1].scores["gini"].count == 1  # only the new row has one


def test_labels_by_index_and_by_name_set_the_target(folder, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nchelsea.jpg,281\ndrinks/coffee.PNG,cup\n")
    out = tmp_path / "labelled.csv"
    evaluate_folder(folder, "mobilenet_v2", ["gradcam"], out, labels_csv=labels, steps=1)
    rows = {row["image"]: row for row in read(out)}
    assert (rows["chelsea.jpg"]["target"], rows["chelsea.jpg"]["label"]) == ("281", "tabby")
    assert (rows["drinks/coffee.PNG"]["target"], rows["drinks/coffee.PNG"]["label"]) == ("968", "cup")
    assert rows["bad.jpg"]["error"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,class\na.jpg,1\n", "must start with the header file,label"),
        ("file,label\na.jpg,1000\n", "line 2: no class '1000'"),
        ("file,label\na.jpg,1\nb.jpg,Tiger cat\n", "line 3: no class 'Tiger cat'"),
        ("file,label\na.jpg,1\n./a.jpg,2\n", "line 3: a.jpg is listed twice"),
    ],
)
def test_bad_labels_files_name_the_row(text, message, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    with pytest.raises(CamError, match=message):
        read_labels(labels, label_set("imagenet1k"))


def test_a_resumed_run_computes_only_the_missing_rows(full, folder, tmp_path, monkeypatch, capsys):
    complete, _ = full
    lines = complete.read_text().splitlines(keepends=True)
    out = tmp_path / "resumed.csv"
    out.write_text("".join(lines[:4]) + "drinks/coffee.PNG,mobilenet_v2,gradcam,967,espr")  # cut short
    calls = []

    def counted(explainer, path, methods, label, steps, baseline, name, boxes, road):
        calls.append((name, list(methods)))
        return evaluate_image(explainer, path, methods, label, steps, baseline, name, boxes, road)

    evaluate_image = batch.evaluate_image
    monkeypatch.setattr(batch, "evaluate_image", counted)
    argv = ["evaluate", str(folder), "--methods", ",".join(METHODS), "--steps", str(STEPS), "--out", str(out)]
    assert run_cli(argv) == 0
    assert calls == [("chelsea.jpg", ["layercam"]), ("drinks/coffee.PNG", METHODS)]
    assert out.read_bytes() == complete.read_bytes()
    printed = capsys.readouterr()
    assert "\r[1/2] 50% chelsea.jpg\r[2/2] 100% drinks/coffee.PNG\n" in printed.err
    assert "2 images evaluated, 1 already in" in printed.err
    assert printed.out.splitlines()[1].split() == ["metric", *METHODS, "best"]
    assert run_cli(argv) == 0 and len(calls) == 2
    assert "0 images evaluated, 3 already in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "not found"),
        (["{folder}", "--model", "nope"], "unknown model 'nope'"),
        (["{folder}", "--methods", "gradcam,nope"], "unknown method 'nope'"),
        (["{folder}", "--labels", "{labels}"], "line 2: no class 'no such animal'"),
        (["{folder}", "--boxes", "{labels}"], "must start with the header file,label,x0,y0,x1,y1"),
        (["{folder}", "--steps", "0"], "steps must be a whole number from 1 to 1000"),
        (["{folder}", "--baseline", "noise"], "invalid choice"),
        (["{folder}", "--out", "{foreign}"], "not an evaluation's"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, folder, tmp_path, capsys):
    labels, foreign = tmp_path / "labels.csv", tmp_path / "other.csv"
    labels.write_text("file,label\nchelsea.jpg,no such animal\n")
    foreign.write_text("a,b\n1,2\n")
    paths = {"folder": folder, "missing": tmp_path / "missing", "labels": labels, "foreign": foreign}
    argv = ["evaluate", *(arg.format(**paths) for arg in args)]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.csv")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert foreign.read_text() == "a,b\n1,2\n"


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install ray==2.60.0")
def test_ray_writes_the_same_bytes_as_this_process(local_ray, full, folder, tmp_path):
    complete, summary = full
    out = tmp_path / "ray.csv"
    on_ray = evaluate_folder(folder, "mobilenet_v2", METHODS, out, steps=STEPS, use_ray=True)
    assert out.read_bytes() == complete.read_bytes()
    assert on_ray.methods == summary.methods
    assert local_ray.is_initialized()
    with pytest.raises(CamError, match="99 threads per task, but no Ray node has more than"):
        evaluate_folder(folder, "mobilenet_v2", METHODS, tmp_path / "t.csv", steps=STEPS, use_ray=True, threads=99)


def test_other_settings_in_the_same_csv_are_computed_anew_and_summarised_apart(full, folder, tmp_path):
    out, summary = full
    mixed = tmp_path / "settings.csv"
    mixed.write_text(out.read_text())
    other = evaluate_folder(folder, "mobilenet_v2", ["gradcam"], mixed, steps=STEPS + 1)
    assert (other.evaluated, other.resumed) == (3, 0)
    rows = read(mixed)
    assert len(rows) == len(read(out)) + 3 and {row["steps"] for row in rows[-3:]} == {str(STEPS + 1)}
    # Each setting's summary counts its own rows only.
    again = evaluate_folder(folder, "mobilenet_v2", METHODS, mixed, steps=STEPS)
    assert again.evaluated == 0 and again.methods == summary.methods
