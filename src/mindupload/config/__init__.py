"""The configuration: one JSON schema (workflow/schemas/config.schema.yaml) holds keys, defaults and docs.

Snakemake validates `config` against the same file in the Snakefile; this module does the same for code
that runs outside Snakemake (the CLI, tests, the docs generator) and turns sections into typed values.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from mindupload.errors import UserError


@cache
def schema() -> dict:
    text = resources.files("mindupload.config").joinpath("config.schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _with_defaults(validator_class):
    """jsonschema's documented recipe: fill in `default`s while validating `properties`."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate(config: dict) -> dict:
    """A validated copy of `config` with every default filled in; a one-line UserError naming the key path.

    The message is built from the schema, never from jsonschema's text: that quotes the bad value (a blocklist
    term, a name) and Snakemake's own `validate` prints the whole schema and config besides.
    """
    import jsonschema

    if not isinstance(config, dict):
        raise UserError("config: the config must be a mapping of keys (`me:`, `sources:`, ...).")
    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise UserError(f"config: {describe(error)}")
    check_consistency(config)
    return config


def workflow_config(config: dict, files=()) -> dict:
    """What the workflow's common.smk calls: every config file read strictly (no key written twice), then
    `config` validated with defaults filled in."""
    from mindupload.config.yamlfile import load_yaml

    for path in files:
        load_yaml(path)
    return validate(config)


_JSON_TYPES = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number"}


def describe(error) -> str:
    """`key.path: what is wrong, what to do`, from the failed schema keyword; values are never quoted."""
    from difflib import get_close_matches

    from mindupload.config.yamlfile import key_path

    kind, expected, instance, sub = error.validator, error.validator_value, error.instance, error.schema
    path = list(error.absolute_path)
    where = key_path(path)
    if kind == "required":
        missing = [k for k in expected if not isinstance(instance, dict) or k not in instance]
        return f"{key_path([*path, missing[0]])}: missing; this key is required (see config/README.md)."
    if kind == "additionalProperties":
        known = list(sub.get("properties", {}))
        unknown = next(k for k in instance if k not in known)
        close = get_close_matches(str(unknown), known, n=1)
        if close:  # a typo of one of our keys: showing it is safe and helps
            return f"{key_path([*path, unknown])}: unknown key. Did you mean `{close[0]}`?"
        # Anything else may be a value written at the wrong indentation (a name, a blocklist term).
        return f"{where}: an unknown key (not shown: it resembles none). Known keys here: {', '.join(known)}."
    if kind == "propertyNames" or "propertyNames" in error.schema_path:
        return f"{where}: a name here may hold only letters, digits, `_` and `-` (it names output files)."
    if kind == "type":
        wanted = " or ".join(_type_name(t) for t in (expected if isinstance(expected, list) else [expected]))
        got = _JSON_TYPES.get(type(instance), "empty" if instance is None else "something else")
        return f"{where}: should be {wanted}, not {got}."
    if kind == "enum":
        return f"{where}: should be one of {', '.join(str(v) for v in expected)}."
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "above", "exclusiveMaximum": "below"}
        return f"{where}: should be {words[kind]} {expected}."
    if kind == "minItems":
        return f"{where}: should list at least {expected} entr{'y' if expected == 1 else 'ies'}."
    if kind == "minProperties":
        return f"{where}: should have at least {expected} entr{'y' if expected == 1 else 'ies'}."
    if kind == "minLength":
        return f"{where}: should not be empty."
    if kind == "maxLength":
        return f"{where}: should be at most {expected} characters."
    if kind == "uniqueItems":
        return f"{where}: lists the same value twice."
    if kind == "pattern":
        return f"{where}: does not have the expected form ({sub.get('description', expected).split('.')[0]})."
    return f"{where}: not valid here ({kind}); see config/README.md."


def _type_name(name: str) -> str:
    return {
        "object": "a mapping",
        "array": "a list",
        "string": "text",
        "boolean": "true/false",
        "integer": "a whole number",
        "number": "a number",
        "null": "empty",
    }.get(name, name)


def check_consistency(config: dict) -> None:
    """Rules between keys that JSON schema cannot say."""
    seg = config["segments"]
    if seg["min_turns"] > seg["max_turns"]:
        raise UserError(
            f"config: segments.min_turns ({seg['min_turns']}) is above segments.max_turns ({seg['max_turns']})."
        )
    hub = config.get("hub", {})
    if hub.get("train_from") == "hub" and not hub.get("dataset_repo"):
        raise UserError("config: hub.train_from is `hub` but hub.dataset_repo is not set: name the repo to train from.")


def load(path: str | Path) -> dict:
    """A config file read strictly (file and line of a YAML error, no key written twice), validated."""
    from mindupload.config.yamlfile import load_yaml

    return validate(load_yaml(path))
