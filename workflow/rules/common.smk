import json
from dataclasses import asdict

from snakemake.utils import validate

from mindupload.config import check_consistency, source_spec
from mindupload.redact import RedactOptions
from mindupload.render import Identity
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
    return config["sources"][wildcards.source]["path"]


def base_model_input(wildcards):
    """The embedded default model is built by a rule; any other base model is the user's to provide."""
    return [EMBEDDED_MODEL] if os.path.normpath(config["base_model"]) == EMBEDDED_MODEL else []


def json_param(options):
    """A dataclass as a JSON param; a function, so Snakemake does not read `{me}` in it as a wildcard."""
    text = json.dumps(asdict(options), ensure_ascii=False, sort_keys=True)
    return lambda wildcards: text


def training_json(wildcards):
    """The sections the axolotl config is rendered from, and nothing else (so nothing else reruns it)."""
    return json.dumps({k: config[k] for k in ("training", "segments")}, ensure_ascii=False, sort_keys=True)
