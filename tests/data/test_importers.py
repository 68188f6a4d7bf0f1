"""Dataset importers on small synthetic layouts, and on the real shared datasets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import dataset, image_bytes, wav_pcm16
from tinyforge.data.canonical import SampleKind
from tinyforge.data.importers import (
    import_coco,
    import_fsdd,
    import_har_stm32,
    import_label_folders,
    import_yolo,
    load_item,
)
from tinyforge.data.labels import BoundingBox, Category
from tinyforge.errors import InvalidArgument


def test_label_folders(tmp_path: Path):
    (tmp_path / "idle").mkdir()
    (tmp_path / "wave" / "deep").mkdir(parents=True)
    (tmp_path / "idle" / "a.wav").write_bytes(wav_pcm16([1, 2, 3]))
    (tmp_path / "wave" / "deep" / "b.csv").write_text("timestamp,x\n0,1\n10,2\n")
    (tmp_path / "wave" / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.wav").write_bytes(wav_pcm16([1]))
    (tmp_path / "loose.png").write_bytes(image_bytes("PNG"))
    items = list(import_label_folders(tmp_path))
    assert [(i.path.name, i.label) for i in items] == [
        ("a.wav", "idle"), ("loose.png", None), ("b.csv", "wave")]
    assert load_item(items[2]).series.interval_ms == 10
    with pytest.raises(InvalidArgument):
        list(import_label_folders(tmp_path / "missing"))


def test_yolo_and_coco_small(tmp_path: Path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(image_bytes("PNG", (200, 100)))
    (tmp_path / "images" / "b.png").write_bytes(image_bytes("PNG", (50, 50)))  # background
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.2 0.2\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    items = list(import_yolo(tmp_path))
    assert [i.path.name for i in items] == ["a.png", "b.png"]
    assert items[0].bounding_boxes == (BoundingBox("dog", 80, 30, 40, 40),
                                       BoundingBox("cat", 0, 0, 40, 20))
    assert items[1].bounding_boxes == ()

    (tmp_path / "labels" / "a.txt").write_text("5 0.5 0.5 0.2 0.4\n")
    with pytest.raises(InvalidArgument, match="class 5"):
        list(import_yolo(tmp_path))
    (tmp_path / "labels" / "a.txt").write_text("1 0.95 0.5 0.2 0.4\n")
    with pytest.raises(InvalidArgument, match="outside"):
        list(import_yolo(tmp_path))

    coco = {"images": [{"id": 7, "file_name": "a.png", "width": 200, "height": 100}],
            "categories": [{"id": 3, "name": "dog"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3,
                             "bbox": [80, 30, 40, 40], "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 3,
                             "bbox": [0, 0, 200, 100], "iscrowd": 1}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    items = list(import_coco(tmp_path / "coco.json", tmp_path / "images"))
    assert items[0].bounding_boxes == (BoundingBox("dog", 80, 30, 40, 40),)
    assert len(list(import_coco(tmp_path / "coco.json", include_crowd=True))[0]
               .bounding_boxes) == 2
    coco["annotations"][0]["image_id"] = 99
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    with pytest.raises(InvalidArgument, match="unknown image 99"):
        list(import_coco(tmp_path / "coco.json"))


# -- real datasets (skipped when ../shared/datasets is absent) -------------------------------

def test_fsdd_all_3000_wavs():
    root = dataset("fsdd")
    items = list(import_fsdd(root))
    assert len(items) == 3000
    assert Counter(i.label for i in items) == {str(d): 300 for d in range(10)}
    assert Counter(i.category for i in items) == {Category.TRAINING: 2700,
                                                  Category.TESTING: 300}
    for item in items:
        p = load_item(item)
        assert p.kind is SampleKind.AUDIO
        assert p.series.frequency_hz == 8000 and p.series.values.shape[1] == 1
        # 0.144 s to 2.283 s long (SOURCE.md)
        assert 0.14 <= p.series.duration_ms / 1000 <= 2.29
        # int16 units (EI's convention): integers within the PCM16 range
        v = p.series.values
        assert np.abs(v).max() <= 32768 and np.array_equal(v, np.round(v))


def test_har_stm32_all_92_csvs():
    root = dataset("har_stm32_accel")
    items = list(import_har_stm32(root))
    assert Counter(i.label for i in items) == {"running": 17, "stationary": 36, "walking": 39}
    for item in items:
        s = load_item(item).series
        assert s.values.shape == (1000, 3)
        assert s.frequency_hz == pytest.approx(26)
        assert s.axes == ("accX", "accY", "accZ") and s.units == ("mg",) * 3
        assert np.abs(s.values).max() <= 4000  # ±4 g in milli-g
        assert s.values.dtype == np.float32


def _boxes_csv(root: Path) -> Counter:
    """Boxes listed in the stager's boxes.csv (independent of the COCO/YOLO files)."""
    lines = (root / "boxes.csv").read_text().splitlines()[1:]
    return Counter(line.split(",")[5] for line in lines if line.rsplit(",", 1)[1] == "0")


def test_coco128_coco_and_yolo_importers_agree():
    root = dataset("coco128_detection")
    coco = list(import_coco(root / "annotations" / "instances_train2017.json",
                            root / "images" / "train2017"))
    yolo = list(import_yolo(root, classes=root / "classes.json"))
    assert len(coco) == len(yolo) == 128
    assert sum(len(i.bounding_boxes) for i in coco) == 929
    assert sum(len(i.bounding_boxes) for i in yolo) == 929
    per_class = _boxes_csv(root)
    assert Counter(b.label for i in coco for b in i.bounding_boxes) == per_class
    assert Counter(b.label for i in yolo for b in i.bounding_boxes) == per_class
    assert per_class["person"] == 254
    by_name = {i.path.name: i for i in yolo}
    for item in coco:
        y = by_name[item.path.name]
        assert len(y.bounding_boxes) == len(item.bounding_boxes)
        # YOLO files carry 6 decimals of normalised coordinates: each COCO box has a YOLO
        # box of the same class within ~1 px (matched greedily, each used once)
        left = list(y.bounding_boxes)
        for a in item.bounding_boxes:
            def dist(b, a=a):
                return max(abs(a.x - b.x), abs(a.y - b.y), abs(a.width - b.width),
                           abs(a.height - b.height))
            same = [b for b in left if b.label == a.label]
            best = min(same, key=dist)
            assert dist(best) < 1.5, (item.path.name, a, best)
            left.remove(best)
    # every image decodes, and the sizes agree with the COCO JSON
    sizes = {i["file_name"]: (i["width"], i["height"]) for i in json.loads(
        (root / "annotations" / "instances_train2017.json").read_text())["images"]}
    modes = Counter()
    for item in coco:
        info = load_item(item).image
        assert (info.width, info.height) == sizes[item.path.name]
        modes[info.mode] += 1
    assert modes == {"RGB": 127, "L": 1}
