import json
from dataclasses import asdict

from snakemake.utils import validate

from mindupload.config import check_consistency, source_spec
from mindupload.render import Identity
from mindupload.tokenizer import looks_local
from mindupload.segment import SegmentOptions
from mindupload.turns import TurnOptions


validate(config, schema="../schemas/config.schema.yaml")
check_consistency(config)

EMBEDDED_MODEL = "results/models/SmolLM2-135M-Instruct"
SOURCES = sorted(config["sources"])


wildcard_constraints:
    source="[A-Za-z0-9_-]+",


def get_final_output():
    """The main job: the dataset, its format check, a trained adapter and sample replies."""
    return [*rules.dataset.input, rules.check.output.html, rules.sample_replies.output[0]]


def source_json(wildcards):
    spec = asdict(source_spec(config, wildcards.source))
    return json.dumps({**spec, "path": str(spec["path"])}, ensure_ascii=False)


def source_path(wildcards):
    """A raw export: local(), so that it never goes to remote storage, whatever the profile."""
    return local(config["sources"][wildcards.source]["path"])


def base_model_input(wildcards):
    """A model folder inside the working directory (the embedded default, built by a rule, or one the user put
    there) is an input, so it reaches remote jobs like any other file; hub ids and folders elsewhere are not."""
    path = os.path.normpath(config["base_model"])
    inside = looks_local(config["base_model"]) and not os.path.isabs(path) and not path.startswith("..")
    return [path] if inside else []


def base_model_path(wildcards, input):
    """The base model where this job sees it: the input's path (a storage copy on a remote machine), or the
    configured hub id or folder."""
    return input.base_model if input.base_model else config["base_model"]


def json_param(options):
    """A dataclass as a JSON param; a function, so Snakemake does not read `{me}` in it as a wildcard."""
    text = json.dumps(asdict(options), ensure_ascii=False, sort_keys=True)
    return lambda wildcards: text


def training_json(wildcards):
    """The sections the axolotl config is rendered from, and nothing else (so nothing else reruns it)."""
    return json.dumps({k: config[k] for k in ("training", "segments")}, ensure_ascii=False, sort_keys=True)
