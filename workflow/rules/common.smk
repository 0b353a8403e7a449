import json
import sys
from dataclasses import asdict

from mindupload import fingerprint, joboptions, provenance
from mindupload.config import workflow_config
from mindupload.dataset.segment import SegmentOptions
from mindupload.dataset.turns import TurnOptions
from mindupload.errors import UserError
from mindupload.ingest.sources import FORMATS, SourceSpec
from mindupload.model import tokenizer
from mindupload.model.tokenizer import looks_local
from mindupload.privacy.redact import RedactOptions
from mindupload.render import Identity

# Our validation, not snakemake.utils.validate: one line naming the key path (Snakemake's prints the whole
# schema and echoes the config, privacy terms included), and no key written twice in a config file.
try:
    config.update(workflow_config(config, workflow.configfiles))
except UserError as error:
    sys.exit(f"mindupload: error: {error}")
# Recorded in what the jobs write; not a param (see docs/architecture.md).
provenance.hand_over_config(config)

EMBEDDED_MODEL = "results/models/SmolLM2-135M-Instruct"
HUB_DATASET_RECEIPT = "results/hub/dataset.json"
SOURCES = sorted(config["sources"])


wildcard_constraints:
    source="[A-Za-z0-9_-]+",


def get_final_output():
    """The main job: the dataset, its format check, a trained adapter, sample replies and the evaluation; the Hub pushes
    only when a repo is named in `hub:` (nothing leaves the machine otherwise)."""
    hub = config["hub"]
    return [
        *rules.dataset.input,
        rules.check.output.html,
        rules.sample_replies.output[0],
        rules.evaluate.output.json,
        rules.evaluate.output.html,
        *([rules.upload.output[0]] if hub["dataset_repo"] else []),
        *([rules.push_adapter.output[0]] if hub["model_repo"] else []),
    ]


# What makes each output, as params: the code behind its command and the software that shapes it. Computed once
# per run from the package's source (mindupload.fingerprint: ast, no imports); a change reruns exactly the
# rules it touches ("params changed" in `snakemake -n`).
PACKAGE = fingerprint.Package()
TRAINING_SOFTWARE = fingerprint.versions("axolotl", "transformers", "peft")
TOKENIZER_SOFTWARE = fingerprint.versions("transformers", "tokenizers")


def code(command, extra=()):
    """The fingerprint of the code behind `mindupload <command>`."""
    return f"code {PACKAGE.command_fingerprint(command, extra)}"


def format_modules(source):
    """The format modules a source's parse runs (loaded by name, so not in the import graph): its format's,
    or all of them when it is detected."""
    fmt = config["sources"][source]["format"]
    return list(FORMATS.values()) if fmt == "auto" else [FORMATS[fmt]]


PARSE_CODE = {source: code("parse", format_modules(source)) for source in SOURCES}


def parse_code(wildcards):
    return PARSE_CODE[wildcards.source]


def hand_over(options):
    """Options that may hold names, privacy terms or the persona, handed to the job outside its command line
    (mindupload.joboptions): the param is a reference holding their digest, never their text.
    """
    return joboptions.hand_over(asdict(options))


def source_options(wildcards):
    spec = asdict(SourceSpec.from_config(config, wildcards.source))
    return joboptions.hand_over({**spec, "path": str(spec["path"])})


def source_path(wildcards):
    """A raw export: local(), so that it never goes to remote storage, whatever the profile."""
    return local(config["sources"][wildcards.source]["path"])


def base_model_input(wildcards):
    """A model folder inside the working directory (the embedded default, built by a rule, or one the user put
    there) is an input, so it reaches remote jobs like any other file; hub ids and folders elsewhere are not.
    """
    path = os.path.normpath(config["base_model"])
    inside = (
        looks_local(config["base_model"])
        and not os.path.isabs(path)
        and not path.startswith("..")
    )
    return [path] if inside else []


def base_model_path(wildcards, input):
    """The base model where this job sees it: the input's path (a storage copy on a remote machine), or the
    configured hub id or folder."""
    return input.base_model if input.base_model else config["base_model"]


def tokenizer_identity():
    """What the segmenter counts tokens with: a model folder that is an input of the rule is tracked as one;
    another folder by a digest of its tokenizer files, a hub id by its name; and the tokenizer libraries.
    """
    if base_model_input(None):
        return f"{config['base_model']} (an input) {TOKENIZER_SOFTWARE}"
    found = tokenizer.identity(config["base_model"])
    where = "hub" if found["on_hub"] else f"files {found['files']}"
    return f"{found['name']} ({where}) {TOKENIZER_SOFTWARE}"


def json_param(options):
    """A dataclass as a JSON param; a function, so Snakemake does not read `{me}` in it as a wildcard."""
    text = json.dumps(asdict(options), ensure_ascii=False, sort_keys=True)
    return lambda wildcards: text


def training_json(wildcards):
    """The sections the axolotl config is rendered from, and nothing else (so nothing else reruns it)."""
    return json.dumps(
        {k: config[k] for k in ("training", "segments")},
        ensure_ascii=False,
        sort_keys=True,
    )


def hub_receipt(wildcards):
    """The upload receipt, when training reads the dataset from the Hub at the revision it pins."""
    return [HUB_DATASET_RECEIPT] if config["hub"]["train_from"] == "hub" else []


def hub_receipt_arg(wildcards, input):
    return f"--hub-receipt {input.receipt}" if input.receipt else ""


def hub_dataset_settings(wildcards):
    """What the dataset card says about how the data was made: settings only, no names, no prompt text."""
    turns = config["turns"]
    settings = {
        "segments": asdict(SegmentOptions.from_config(config)),
        "turns": {
            "session_gap_hours": turns["session_gap_hours"],
            "media": turns["media"],
        },
        "split": {"validation_fraction": config["split"]["validation_fraction"]},
        "identity": {"use_real_names": config["identity"]["use_real_names"]},
        # Which redaction ran, never the blocklist/allowlist terms or excluded names themselves.
        "privacy": {
            k: config["privacy"][k]
            for k in ("redact_other", "redact_own", "redact_types", "replace_names")
        },
    }
    return json.dumps(settings, sort_keys=True)


def hub_model_settings(wildcards):
    """What the model card says about training (the adapter's own config adds the LoRA shape)."""
    keys = (
        "learning_rate",
        "lr_scheduler",
        "num_epochs",
        "max_steps",
        "micro_batch_size",
        "gradient_accumulation_steps",
    )
    training = {key: config["training"][key] for key in keys}
    return json.dumps(
        {"training": training, "sequence_len": config["segments"]["sequence_len"]},
        sort_keys=True,
    )
