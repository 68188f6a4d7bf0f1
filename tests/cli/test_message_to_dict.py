"""``message_to_dict`` (what every ``--json`` and table view of the CLI prints from): map
fields become dicts (iterating a proto map yields only its keys), repeated messages lists."""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct

from tinyforge.cli.common import message_to_dict
from tinyforge.v1 import common_pb2 as cpb
from tinyforge.v1 import ingest_service_pb2 as ipb


def test_map_and_repeated_message_fields() -> None:
    msg = ipb.Sample(id=7, metadata={"site": "lab", "run": "3"},
                     bounding_boxes=[ipb.BoundingBox(label="cup", x=1, y=2, width=3, height=4)])
    d = message_to_dict(msg)
    assert d["id"] == 7
    assert d["metadata"] == {"site": "lab", "run": "3"}
    assert d["bounding_boxes"][0]["label"] == "cup" and d["bounding_boxes"][0]["width"] == 3
    assert message_to_dict(ipb.Sample())["metadata"] == {}


def test_struct_numbers_print_as_ints_when_whole() -> None:
    result = Struct()
    result.update({"samples": 4, "ratio": 0.5, "ids": [5, 6], "nested": {"n": 2}})
    d = message_to_dict(cpb.Job(id=1, result=result))["result"]
    assert d == {"samples": 4, "ratio": 0.5, "ids": [5, 6], "nested": {"n": 2}}
    assert isinstance(d["samples"], int) and isinstance(d["ids"][0], int)
