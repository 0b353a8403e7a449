"""config/README.md, generated from the config schema so the docs cannot drift from the defaults."""

from __future__ import annotations

import json

from mindupload.config import schema

HEADER = """# Configuration

`config/config.yaml` is validated against `workflow/schemas/config.schema.yaml` when the workflow starts;
every key below that has a default may be left out. This page is generated from that schema
(`mindupload config-docs > config/README.md`); a test fails when the two differ.

To train on your own chats, copy `config/config.yaml`, point `sources:` at your exports (keep them under
`data/`, which git ignores), set `me:` to the names you appear under, and run
`snakemake --cores all --configfile your-config.yaml`.

"""


def render() -> str:
    root = schema()
    out = [HEADER, "| key | type | default | description |", "|---|---|---|---|"]
    out += _rows(root, "")
    return "\n".join(out) + "\n"


def _rows(node: dict, prefix: str) -> list[str]:
    rows = []
    required = set(node.get("required", ()))
    for name, prop in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        rows.append(f"| `{key}` | {_type(prop)} | {_default(prop, name in required)} | {_text(prop)} |")
        rows += _rows(prop, f"{key}.")
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in extra:
            rows += _rows(extra, f"{key}.<name>.")
    return rows


def _type(prop: dict) -> str:
    kind = prop.get("type", "")
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {prop.get('items', {}).get('type', 'values')}"
    return kind


def _default(prop: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in prop or prop.get("type") == "object":
        return ""  # sections: their keys carry the defaults
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _text(prop: dict) -> str:
    return " ".join(prop.get("description", "").split()).replace("|", "\\|")
