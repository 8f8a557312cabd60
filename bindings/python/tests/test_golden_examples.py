"""Every golden example of schemas/examples/ through the generated models.

For each example named in schemas/index.json: the model of its type validates it, and dumping
the model (`by_alias`, `exclude_unset`, JSON mode) gives back exactly the example's JSON, so no
field is dropped, renamed or re-typed on the way through. The tests are parametrized from
index.json; a check that the parameter list matches the files on disk keeps an empty or partial
collection from passing.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import signalbox_protocol
from signalbox_protocol import constants, models

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
INDEX = json.loads((SCHEMAS / "index.json").read_text(encoding="utf-8"))
EXAMPLES = [
    pytest.param(entry["name"], example, id=example.removeprefix("examples/"))
    for entry in INDEX["types"]
    for example in entry["examples"]
]


def load(path: str) -> Any:
    return json.loads((SCHEMAS / path).read_text(encoding="utf-8"))


def model_of(type_name: str) -> type[BaseModel]:
    model = getattr(models, type_name, None)
    assert isinstance(model, type) and issubclass(model, BaseModel), f"no model {type_name}"
    return model


def test_every_example_on_disk_is_in_the_index() -> None:
    on_disk = sorted(str(p.relative_to(SCHEMAS)) for p in (SCHEMAS / "examples").rglob("*.json"))
    indexed = sorted(p.values[1] for p in EXAMPLES)
    assert on_disk == indexed
    assert len(indexed) >= len(INDEX["types"]), "fewer examples than types"


def test_every_type_has_a_model() -> None:
    for entry in INDEX["types"]:
        model_of(entry["name"])


@pytest.mark.parametrize(("type_name", "example"), EXAMPLES)
def test_example_validates_and_round_trips(type_name: str, example: str) -> None:
    original = load(example)
    instance = model_of(type_name).model_validate(original)
    dumped = instance.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped == original
    # And back again from the JSON text, as an agent reads it off the wire.
    again = model_of(type_name).model_validate_json(json.dumps(dumped))
    assert again == instance


def test_envelope_unions_pick_the_member_by_type() -> None:
    offer = models.ClientEnvelope.model_validate(load("examples/ClientEnvelope/offer.json"))
    assert type(offer.root).__name__ == "ClientOfferEnvelope"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        models.ClientEnvelope.model_validate({"type": "no_such_envelope"})
    with pytest.raises(ValidationError):
        models.ClientEnvelope.model_validate({"type": "join_server", "serverID": "lobby"})


@pytest.mark.parametrize("union", ["ClientEnvelope", "ServerEnvelope"])
def test_envelope_union_members_are_the_schemas(union: str) -> None:
    schema = load(f"{union}.schema.json")
    wire_types = sorted(m["properties"]["type"]["enum"][0] for m in schema["oneOf"])
    members = typing.get_args(model_of(union).model_fields["root"].annotation)
    tags = sorted(typing.get_args(m.model_fields["type"].annotation)[0] for m in members)
    assert tags == wire_types


def test_constants_are_those_of_constants_json() -> None:
    expected = {name: c["value"] for name, c in load("constants.json")["constants"].items()}
    actual = {name: getattr(constants, name) for name in expected}
    assert actual == expected
    assert signalbox_protocol.PROTOCOL_VERSION == INDEX["protocolVersion"]
