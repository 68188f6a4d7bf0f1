"""parameters.json parsing: Edge-Impulse-style files load; every defect names its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyforge.blocks.manifest import load_manifest, parse_manifest
from tinyforge.errors import InvalidArgument

# Shaped like Edge Impulse's own files: grouped items, "value" as default, hyphenated params.
EI_STYLE = {
    "version": 1,
    "type": "machine-learning",
    "info": {"name": "Tiny CNN", "description": "conv net", "operatesOn": "audio"},
    "parameters": [
        {
            "group": "Training",
            "items": [
                {
                    "name": "Dropout",
                    "value": 0.25,
                    "type": "float",
                    "param": "dropout",
                    "min": 0,
                    "max": 0.9,
                    "help": "dropout rate",
                },
                {
                    "name": "Filters",
                    "value": "16",
                    "type": "select",
                    "param": "filters",
                    "valid": [{"label": "small", "value": "8"}, {"label": "big", "value": "16"}],
                },
            ],
        },
        {"name": "Use batch norm", "value": True, "type": "boolean", "param": "batch-norm"},
    ],
}


def test_ei_style_manifest_loads_and_validates_values(tmp_path: Path) -> None:
    (tmp_path / "parameters.json").write_text(json.dumps(EI_STYLE))
    m = load_manifest(tmp_path)
    assert m.type == "learn" and m.name == "Tiny CNN"
    assert [p.param for p in m.parameters] == ["dropout", "filters", "batch_norm"]
    assert m.validate_values({}) == {"dropout": 0.25, "filters": "16", "batch_norm": True}
    assert m.validate_values({"dropout": "0.5", "filters": 8, "batch-norm": "false"}) == {
        "dropout": 0.5,
        "filters": "8",
        "batch_norm": False,
    }
    assert m.cli_args({"dropout": 0.1}) == [
        "--dropout",
        "0.1",
        "--filters",
        "16",
        "--batch-norm",
        "true",
    ]
    # round trip through the canonical JSON form
    again = parse_manifest(json.dumps(m.to_json()))
    assert again.validate_values({}) == m.validate_values({})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"dropout": 2.0}, "parameters.dropout"),
        ({"filters": "32"}, "parameters.filters"),
        ({"nope": 1}, "parameters.nope"),
        ({"dropout": "abc"}, "parameters.dropout"),
    ],
)
def test_bad_values_name_the_parameter(value: dict, field: str) -> None:
    m = parse_manifest(EI_STYLE)
    with pytest.raises(InvalidArgument) as err:
        m.validate_values(value)
    assert err.value.field == field


def _broken(**changes) -> dict:
    doc = json.loads(json.dumps(EI_STYLE))
    for path, value in changes.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[keys[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (b"{not json", "parameters.json"),
        (b"[]", "parameters.json"),
        (_broken(version=2), "version"),
        (_broken(type="weird"), "type"),
        (_broken(info="x"), "info"),
        (_broken(info__name=""), "info.name"),
        (_broken(info__name="../etc"), "info.name"),
        (_broken(info__localCommand="python x.py"), "info.localCommand"),
        (_broken(parameters="x"), "parameters"),
        (_broken(parameters__0__items__0__type="complex"), "parameters[0].items[0].type"),
        (_broken(parameters__0__items__1__valid=[]), "parameters[0].items[1].valid"),
        (_broken(parameters__0__items__0__value=5), "parameters[0].items[0].value"),
        (_broken(parameters__0__items__0__min="low"), "parameters[0].items[0].min"),
        (_broken(parameters__1__param="dropout"), "parameters[1].param"),
        (_broken(parameters__1__param="bad param!"), "parameters[1].param"),
    ],
)
def test_defective_manifest_names_the_field(doc, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_manifest(doc)
    assert err.value.field == field, err.value.message


def test_missing_file_and_oversize(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="needs parameters.json"):
        load_manifest(tmp_path)
    (tmp_path / "parameters.json").write_text(" " * (300 * 1024))
    with pytest.raises(InvalidArgument, match="over"):
        load_manifest(tmp_path)


def test_local_command_is_kept() -> None:
    doc = _broken(info__localCommand=["python", "train.py"])
    m = parse_manifest(doc)
    assert m.local_command == ("python", "train.py")
    assert m.to_json()["info"]["localCommand"] == ["python", "train.py"]
