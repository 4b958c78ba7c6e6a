"""Build the JSON Schema that tests/ocsf/detection_finding-1.1.0.schema.json holds, from OCSF's own definitions.

Provenance: https://github.com/ocsf/ocsf-schema, tag v1.1.0 (commit 8ea34523a316c4bad7e360e870a23a8e5cb29bd5),
the version Prowler's JSON-OCSF output declares. Run it against a clone of that repository:

    python tests/ocsf/build_schema.py /path/to/ocsf-schema > tests/ocsf/detection_finding-1.1.0.schema.json

What it derives, as the OCSF server does: the class's attributes through `extends` and `$include`
(base_event <- finding <- detection_finding, classification, occurrence, the cloud profile),
each attribute's type from dictionary.json (arrays, enums of the *_id attributes, required ones),
`<name>_dt` strings for timestamps (the datetime profile), and class_uid/category_uid/type_uid
from the category and class numbers. Unknown attributes are refused (`additionalProperties:
false`) in the class and in the objects a Detection Finding producer fills (metadata,
product, finding_info, resource_details, group, cloud, account, organization, remediation);
other object attributes are checked as objects only, to keep the file small.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

REF = "refs/tags/v1.1.0"
CLASS = "events/findings/detection_finding.json"
APPLIED_PROFILES = {"cloud", "datetime"}
EXPANDED = {"metadata", "product", "finding_info", "resource_details", "group", "cloud", "account", "organization", "remediation"}
BASE_TYPES = {"string_t": {"type": "string"}, "integer_t": {"type": "integer"}, "long_t": {"type": "integer"},
              "float_t": {"type": "number"}, "boolean_t": {"type": "boolean"}, "json_t": {}, "object": {"type": "object"}}


def read(repo: str, path: str) -> dict[str, Any]:
    return json.loads(subprocess.run(["git", "-C", repo, "show", f"{REF}:{path}"], capture_output=True, check=True).stdout)


def attributes(repo: str, definition: dict[str, Any], folder: str) -> dict[str, dict[str, Any]]:
    """The attributes of a class or object: its parent's, its includes', then its own (later ones win)."""
    merged: dict[str, dict[str, Any]] = {}
    if definition.get("extends") and definition["extends"] != "object":
        parent = definition["extends"]
        path = f"events/{parent}.json" if parent == "base_event" else f"{folder}/{parent}.json"
        merged.update(attributes(repo, read(repo, path), folder))
    own = dict(definition.get("attributes") or {})
    for include in own.pop("$include", []):
        included = read(repo, include)
        applied = included.get("meta") != "profile" or included["name"] in APPLIED_PROFILES
        for name, attr in (included.get("attributes") or {}).items():
            merged[name] = {**merged.get(name, {}), **attr, **({} if applied else {"requirement": "optional"})}
    for name, attr in own.items():
        enum = {**(merged.get(name, {}).get("enum") or {}), **(attr.get("enum") or {})}
        merged[name] = {**merged.get(name, {}), **attr, **({"enum": enum} if enum else {})}
    return merged


def type_schema(dictionary: dict[str, Any], type_name: str) -> dict[str, Any]:
    if type_name in BASE_TYPES:
        return dict(BASE_TYPES[type_name])
    if type_name in dictionary["types"]["attributes"]:
        if type_name == "timestamp_t":
            return {"type": "integer"}
        if type_name == "datetime_t":
            return {"type": "string"}
        return type_schema(dictionary, dictionary["types"]["attributes"][type_name].get("type", "string_t"))
    return {"$ref": f"#/$defs/{type_name}"} if type_name in EXPANDED else {"type": "object"}


def properties(dictionary: dict[str, Any], attrs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    props, required = {}, []
    for name, attr in attrs.items():
        entry = {**dictionary["attributes"].get(name, {}), **attr}
        enum = {**(dictionary["attributes"].get(name, {}).get("enum") or {}), **(attr.get("enum") or {})}
        schema = type_schema(dictionary, entry.get("type", "string_t"))
        if enum and schema.get("type") == "integer":
            schema["enum"] = sorted(int(key) for key in enum)
        props[name] = {"type": "array", "items": schema} if entry.get("is_array") else schema
        if entry.get("type") == "timestamp_t":
            props[f"{name}_dt"] = {"type": "string"}
        if attr.get("requirement") == "required":
            required.append(name)
    return props, sorted(required)


def build(repo: str) -> dict[str, Any]:
    dictionary = read(repo, "dictionary.json")
    categories = read(repo, "categories.json")
    definition = read(repo, CLASS)
    category = categories["attributes"][definition["category"]]["uid"]
    class_uid = category * 1000 + definition["uid"]
    props, required = properties(dictionary, attributes(repo, definition, "events/findings"))
    activities = [a for a in props["activity_id"]["enum"]]
    props["class_uid"] = {"const": class_uid}
    props["category_uid"] = {"const": category}
    props["type_uid"] = {"enum": [class_uid * 100 + a for a in activities]}
    defs = {}
    for name in sorted(EXPANDED):
        obj_props, obj_required = properties(dictionary, attributes(repo, read(repo, f"objects/{name}.json"), "objects"))
        defs[name] = {"type": "object", "properties": obj_props, "required": obj_required, "additionalProperties": False}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://schema.ocsf.io/1.1.0/classes/detection_finding",
            "title": f"OCSF 1.1.0 Detection Finding (class_uid {class_uid}), derived from ocsf-schema v1.1.0 by tests/ocsf/build_schema.py",
            "type": "object", "properties": props, "required": required, "additionalProperties": False, "$defs": defs}


if __name__ == "__main__":
    json.dump(build(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
