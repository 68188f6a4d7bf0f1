"""Real datasets through the platform (gRPC SDK): FSDD WAVs, STM32 HAR CSVs, COCO128 boxes.
Skipped with a message when ../shared/datasets is absent."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ingest.conftest import dataset
from tinyforge.data import importers


def _upload_items(client, pid: int, items, workers: int = 8) -> list:
    def one(it):
        return client.upload_file(
            it.path, project_id=pid, label=it.label,
            category=str(it.category) if it.category else "split",
            bounding_boxes=[b.to_ei() for b in it.bounding_boxes],
            metadata=it.metadata or None, frequency_hz=it.frequency_hz)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, items))


def _fsdd(tenant, every: int) -> None:
    root = dataset("fsdd")
    items = list(importers.import_fsdd(root))
    assert len(items) == 3000
    items = items[::every]
    client = tenant.client()
    pid = tenant.new_project()
    _upload_items(client, pid, items)
    summary = client.dataset_summary(pid)
    per_digit = Counter()
    for e in summary.labels:
        per_digit[e.label] += e.count
    assert per_digit == Counter({str(d): 300 // every for d in range(10)})
    rows = client.list_samples(pid)
    assert all(s.kind == "audio" and s.interval_ms == pytest.approx(0.125) for s in rows)
    assert all(140 <= s.duration_ms <= 2300 for s in rows)  # 0.14–2.28 s clips
    # FSDD's test split: recordings 0–4 of each speaker and digit
    expected_test = {s.filename for s in rows if int(s.filename.split("_")[2][:-4]) < 5}
    assert {s.filename for s in rows if s.category == 2} == expected_test
    if every == 1:
        assert len(expected_test) == 300


def test_fsdd_subset_through_the_platform(tenant) -> None:
    _fsdd(tenant, every=10)


@pytest.mark.slow
def test_fsdd_all_3000_through_the_platform(tenant) -> None:
    _fsdd(tenant, every=1)


def test_har_stm32_92_csvs(tenant) -> None:
    root = dataset("har_stm32_accel")
    items = list(importers.import_har_stm32(root))
    client = tenant.client()
    pid = tenant.new_project()
    rows = _upload_items(client, pid, items)
    assert len(rows) == 92
    counts = Counter(s.label for s in client.list_samples(pid))
    assert counts == {"running": 17, "stationary": 36, "walking": 39}
    for s in rows:
        assert len(s.axes) == 3 and s.length == 1000
        assert s.interval_ms == pytest.approx(1000 / 26)


def test_coco128_boxes_via_coco_importer(tenant) -> None:
    root = dataset("coco128_detection")
    items = list(importers.import_coco(root / "annotations" / "instances_train2017.json",
                                       root / "images" / "train2017"))
    client = tenant.client()
    pid = tenant.new_project()
    _upload_items(client, pid, items)
    rows = client.list_samples(pid)
    assert len(rows) == 128
    assert sum(len(s.bounding_boxes) for s in rows) == 929
    assert sum(b.label == "person" for s in rows for b in s.bounding_boxes) == 254
    assert all(s.kind == "image" and s.width > 0 and s.height > 0 for s in rows)
