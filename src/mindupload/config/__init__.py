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
    """A validated copy of `config` with every default filled in; UserError naming the bad key."""
    import jsonschema

    config = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UserError(f"config: {where}: {error.message}")
    check_consistency(config)
    return config


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
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file.") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({e}).") from None
    return validate(raw)
