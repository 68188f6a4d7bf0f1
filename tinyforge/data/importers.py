"""Dataset importers: walk a dataset on disk and yield one :class:`ImportItem` per file.

Each item says which file to upload and with what label, bounding boxes, category and
parsing hints; :func:`load_item` parses it into the canonical form. Nothing is stored here:
the CLI / ingest service uploads items one by one.

Layouts:

- :func:`import_label_folders`: ``root/<label>/<file>`` (deeper folders inherit the first
  folder's name; files directly in root are unlabeled).
- :func:`import_yolo`: images plus ``class cx cy w h`` text files (normalised to 0–1), found
  next to the image or in the ``labels/`` tree mirroring ``images/``; class names from a list,
  ``classes.txt`` / ``obj.names`` (one per line), ``classes.json`` or ``data.yaml`` ``names``.
- :func:`import_coco`: a COCO instances JSON (``bbox`` = [x, y, width, height] in pixels);
  crowd regions are skipped unless asked for.
- :func:`import_har_stm32`: the STMicro HAR set: ``<label>/<label>_<NN>_26Hz_4g_mg.csv``,
  headerless ``x, y, z`` in milli-g at the rate written in the file name.
- :func:`import_fsdd`: Free Spoken Digit Dataset, ``{digit}_{speaker}_{index}.wav``; label =
  digit, indices 0–4 are the test split.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from tinyforge.data.canonical import ParsedSample
from tinyforge.data.formats import parse_upload
from tinyforge.data.labels import (
    BoundingBox,
    Category,
    check_boxes_in_image,
    validate_label,
)
from tinyforge.errors import InvalidArgument

SUPPORTED_EXTENSIONS = frozenset({".json", ".cbor", ".csv", ".wav", ".jpg", ".jpeg", ".png"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True)
class ImportItem:
    """One file to upload. ``frequency_hz``, ``axes`` and ``units`` are parsing hints for
    headerless CSV; ``category`` is None when the dataset has no split of its own."""

    path: Path
    label: str | None
    bounding_boxes: tuple[BoundingBox, ...] = ()
    category: Category | None = None
    frequency_hz: float | None = None
    axes: tuple[str, ...] | None = None
    units: tuple[str, ...] | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def load_item(item: ImportItem, **parse_options: object) -> ParsedSample:
    """Read and parse an item's file, applying its axis names / units hints."""
    parsed = parse_upload(item.path.read_bytes(), item.path.name, None,
                          frequency_hz=item.frequency_hz, **parse_options)  # type: ignore[arg-type]
    if parsed.series is not None and (item.axes or item.units):
        s = parsed.series
        parsed = replace(parsed, series=replace(s, axes=item.axes or s.axes,
                                                units=item.units or s.units))
    return parsed


def _files(root: Path, extensions: frozenset[str]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _require_dir(root: Path, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InvalidArgument(f"{what} {str(root)!r} is not a directory", field="path")
    return root


def import_label_folders(root: Path, *, extensions: frozenset[str] = SUPPORTED_EXTENSIONS
                         ) -> Iterator[ImportItem]:
    """``root/<label>/...`` → items labelled with the first folder's name."""
    root = _require_dir(root, "dataset folder")
    for path in _files(root, extensions):
        parts = path.relative_to(root).parts
        label = validate_label(parts[0], f"folder {parts[0]!r}") if len(parts) > 1 else None
        yield ImportItem(path=path, label=label)


# -- YOLO ------------------------------------------------------------------------------------

def read_class_names(path: Path) -> list[str]:
    """Class names from ``classes.txt``/``*.names`` (one per line), ``classes.json`` (a list
    of names, or of objects with ``name`` and ``yolo_id``/``id``) or a YOLO ``data.yaml``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        obj = json.loads(text)
        if isinstance(obj, dict) and "names" in obj:
            obj = obj["names"]
        if isinstance(obj, list) and obj and all(isinstance(o, dict) for o in obj):
            key = "yolo_id" if "yolo_id" in obj[0] else "id"
            by_id = {int(o[key]): str(o["name"]) for o in obj}
            return [by_id[i] for i in range(len(by_id))]
        if isinstance(obj, dict):
            return [str(obj[k]) for k in sorted(obj, key=int)]
        return [str(o) for o in obj]
    if path.suffix in (".yaml", ".yml"):
        import yaml

        names = yaml.safe_load(text).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names, key=int)]
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _find_classes(root: Path) -> list[str]:
    for name in ("classes.txt", "obj.names", "classes.json", "data.yaml", "dataset.yaml"):
        if (root / name).is_file():
            return read_class_names(root / name)
    raise InvalidArgument(f"no class list found in {str(root)!r} (classes.txt, obj.names, "
                          "classes.json or data.yaml); pass classes=", field="classes")


def _yolo_label_path(root: Path, image: Path) -> Path | None:
    beside = image.with_suffix(".txt")
    if beside.is_file():
        return beside
    rel = image.relative_to(root).parts
    if "images" in rel:
        i = len(rel) - 1 - rel[::-1].index("images")
        mirrored = root.joinpath(*rel[:i], "labels", *rel[i + 1:]).with_suffix(".txt")
        if mirrored.is_file():
            return mirrored
    return None


def parse_yolo_boxes(text: str, classes: Sequence[str], width: int, height: int,
                     source: str = "labels") -> list[BoundingBox]:
    """YOLO lines ``class cx cy w h`` (normalised) → pixel boxes inside a width×height image."""
    boxes = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 5:
                raise ValueError(f"expected 5 fields, got {len(parts)}")
            cls = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError as e:
            raise InvalidArgument(f"{source} line {n}: {e}", field="labels") from e
        if not 0 <= cls < len(classes):
            raise InvalidArgument(f"{source} line {n}: class {cls} not in 0..{len(classes) - 1}",
                                  field="labels")
        boxes.append(BoundingBox(classes[cls], (cx - w / 2) * width, (cy - h / 2) * height,
                                 w * width, h * height))
    return check_boxes_in_image(boxes, width, height, field=source)


def import_yolo(root: Path, classes: Sequence[str] | Path | None = None
                ) -> Iterator[ImportItem]:
    """Images under ``root`` with their YOLO boxes. An image without a label file is a
    background image (no boxes). The item label is None (object detection)."""
    root = _require_dir(root, "YOLO dataset folder")
    if classes is None:
        names = _find_classes(root)
    elif isinstance(classes, str | Path):
        names = read_class_names(Path(classes))
    else:
        names = [str(c) for c in classes]
    names = [validate_label(n, "classes") for n in names]
    for image in _files(root, IMAGE_EXTENSIONS):
        label_path = _yolo_label_path(root, image)
        boxes: list[BoundingBox] = []
        if label_path is not None:
            with Image.open(image) as img:  # reads the header only
                width, height = img.size
            boxes = parse_yolo_boxes(label_path.read_text(encoding="utf-8"), names, width,
                                     height, source=str(label_path.name))
        yield ImportItem(path=image, label=None, bounding_boxes=tuple(boxes))


# -- COCO ------------------------------------------------------------------------------------

def import_coco(annotations: Path, images_dir: Path | None = None, *,
                include_crowd: bool = False) -> Iterator[ImportItem]:
    """Items from a COCO instances file; images are looked up in ``images_dir`` (default: the
    JSON's folder). Box labels are the category names."""
    annotations = Path(annotations)
    try:
        coco = json.loads(annotations.read_text(encoding="utf-8"))
        cats = {int(c["id"]): validate_label(c["name"], "categories.name")
                for c in coco["categories"]}
        images = {int(i["id"]): i for i in coco["images"]}
        anns = coco.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"not a COCO annotations file: {e}", field="annotations") from e
    images_dir = Path(images_dir) if images_dir is not None else annotations.parent
    per_image: dict[int, list[BoundingBox]] = {i: [] for i in images}
    for a in anns:
        if a.get("iscrowd") and not include_crowd:
            continue
        try:
            x, y, w, h = (float(v) for v in a["bbox"])
            image_id = int(a["image_id"])
            label = cats[int(a["category_id"])]
        except (KeyError, ValueError, TypeError) as e:
            raise InvalidArgument(f"annotation {a.get('id')!r}: {e}", field="annotations") from e
        if image_id not in per_image:
            raise InvalidArgument(f"annotation {a.get('id')!r} refers to unknown image "
                                  f"{image_id}", field="annotations")
        per_image[image_id].append(BoundingBox(label, x, y, w, h))
    for image_id in sorted(images, key=lambda i: images[i]["file_name"]):
        info = images[image_id]
        boxes = check_boxes_in_image(per_image[image_id], int(info["width"]),
                                     int(info["height"]), field=str(info["file_name"]))
        yield ImportItem(path=images_dir / info["file_name"], label=None,
                         bounding_boxes=tuple(boxes))


# -- STM32 HAR and FSDD ----------------------------------------------------------------------

_HAR_NAME = re.compile(r"^(?P<label>[A-Za-z]+)_(?P<n>\d+)_(?P<hz>\d+(?:\.\d+)?)Hz_.*\.csv$")


def import_har_stm32(root: Path) -> Iterator[ImportItem]:
    """STMicro HAR: ``<label>/<label>_<NN>_<F>Hz_4g_mg.csv``; label from the folder (which
    must agree with the file name), frequency from the name, axes accX/accY/accZ in mg."""
    root = _require_dir(root, "HAR dataset folder")
    for path in _files(root, frozenset({".csv"})):
        m = _HAR_NAME.match(path.name)
        if m is None:
            raise InvalidArgument(f"{path.name!r} does not follow <label>_<NN>_<F>Hz_*.csv",
                                  field="path")
        folder = path.parent.name
        if m["label"] != folder:
            raise InvalidArgument(f"{path.name!r} is in folder {folder!r}", field="path")
        yield ImportItem(path=path, label=validate_label(folder), frequency_hz=float(m["hz"]),
                         axes=("accX", "accY", "accZ"), units=("mg", "mg", "mg"))


_FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)\.wav$")
FSDD_TEST_INDICES = range(0, 5)


def import_fsdd(root: Path) -> Iterator[ImportItem]:
    """FSDD: ``{digit}_{speaker}_{index}.wav`` → label digit, testing for index 0–4,
    metadata speaker."""
    root = _require_dir(root, "FSDD folder")
    for path in _files(root, frozenset({".wav"})):
        m = _FSDD_NAME.match(path.name)
        if m is None:
            raise InvalidArgument(f"{path.name!r} does not follow {{digit}}_{{speaker}}_"
                                  "{index}.wav", field="path")
        test = int(m["index"]) in FSDD_TEST_INDICES
        yield ImportItem(path=path, label=m["digit"],
                         category=Category.TESTING if test else Category.TRAINING,
                         metadata={"speaker": m["speaker"]})
