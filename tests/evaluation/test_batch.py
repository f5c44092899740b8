"""Batch evaluation of a folder: rows per (image, method), labels, broken images, resuming, the CLI, the summary,
and byte-identical CSVs from this process and from local Ray."""

from __future__ import annotations

import csv
import importlib.util
import statistics
from pathlib import Path

import pytest

from cam_core import CamError
from cam_core.evaluation import batch
from cam_core.evaluation.batch import COLUMNS, evaluate_folder, image_files, read_labels
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
            for column in ("probability", "deletion_auc", "insertion_auc", "drop_percent", "explained_probability"):
                assert len(row[column].split(".")[1]) == 6, row
            assert float(row["deletion_auc"]) < float(row["insertion_auc"])


def test_a_broken_image_gives_error_rows_and_the_run_goes_on(full):
    out, summary = full
    broken = [row for row in read(out) if row["image"] == "bad.jpg"]
    assert [row["method"] for row in broken] == METHODS
    for row in broken:
        assert row["error"] == "bad.jpg is not an image this tool can read (UnidentifiedImageError)"
        assert (row["steps"], row["baseline"]) == (str(STEPS), "rise")
        assert all(row[column] == "" for column in COLUMNS[5:-1])
    assert [(item.images, item.errors) for item in summary.methods] == [(2, 1), (2, 1)]


def test_the_summary_is_the_mean_and_std_of_the_csv(full):
    out, summary = full
    rows = read(out)
    assert [item.method for item in summary.methods] == METHODS
    assert (summary.evaluated, summary.resumed) == (3, 0) and summary.seconds > 0
    for item in summary.methods:
        scored = [row for row in rows if row["method"] == item.method and not row["error"]]
        for stat, column, scale in [
            (item.deletion_auc, "deletion_auc", 1),
            (item.insertion_auc, "insertion_auc", 1),
            (item.average_drop, "drop_percent", 1),
            (item.increase_percent, "increase", 100),
        ]:
            values = [scale * float(row[column]) for row in scored]
            assert stat == pytest.approx((statistics.fmean(values), statistics.pstdev(values)), abs=1e-12)
    table = summary.table().splitlines()
    assert table[1].split()[:3] == ["method", "images", "errors"]
    mean, std = summary.methods[0].deletion_auc
    assert table[2].split()[:4] == ["gradcam", "2", "1", f"{mean:.4f}"] and f"± {std:.4f}" in table[2]


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

    def counted(explainer, path, methods, label, steps, baseline, name):
        calls.append((name, list(methods)))
        return evaluate_image(explainer, path, methods, label, steps, baseline, name)

    evaluate_image = batch.evaluate_image
    monkeypatch.setattr(batch, "evaluate_image", counted)
    argv = ["evaluate", str(folder), "--methods", ",".join(METHODS), "--steps", str(STEPS), "--out", str(out)]
    assert run_cli(argv) == 0
    assert calls == [("chelsea.jpg", ["layercam"]), ("drinks/coffee.PNG", METHODS)]
    assert out.read_bytes() == complete.read_bytes()
    printed = capsys.readouterr()
    assert "\r[1/2] 50% chelsea.jpg\r[2/2] 100% drinks/coffee.PNG\n" in printed.err
    assert "2 images evaluated, 1 already in" in printed.err
    assert printed.out.splitlines()[2].startswith("gradcam ")
    assert run_cli(argv) == 0 and len(calls) == 2
    assert "0 images evaluated, 3 already in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "not found"),
        (["{folder}", "--model", "nope"], "unknown model 'nope'"),
        (["{folder}", "--methods", "gradcam,nope"], "unknown method 'nope'"),
        (["{folder}", "--labels", "{labels}"], "line 2: no class 'no such animal'"),
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
