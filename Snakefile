# mind-upload: your chat exports -> a language model that talks like you.
# Wiring only: the stages live in workflow/rules/, the logic in the `mindupload` package.
from snakemake.utils import min_version

min_version("9.27")


# `snakemake --report report.html`: one page with every output marked report() in the rules.
report: "workflow/report/workflow.rst"


from mindupload.config.workflow import check_config_file

# The bundled example; a config given with `--configfile` replaces it (never merges with it), so the
# example's chats never join a user's dataset. The schema fills every key a config leaves out. It is read
# strictly first: a YAML mistake names its file and line (Snakemake's message names neither), and a key
# written twice is refused rather than silently overwritten.
if not workflow.overwrite_configfiles:
    check_config_file("config/config.yaml")

    configfile: "config/config.yaml"


# With S3 storage (the RunPod profile) the bucket is checked first: one line if it is wrong, before any pod.
if workflow.storage_settings.default_storage_provider == "s3":
    from snakemake_executor_plugin_runpod.storage import check_workflow

    check_workflow(workflow)


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/privacy.smk"
include: "workflow/rules/turns.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/hub.smk"
include: "workflow/rules/serve.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
