# The dataset -> a Hugging Face Hub dataset repo (private by default) with a card; the receipt pins the commit.
# Reruns only when the dataset (or what the card says about it) changed. Token: HF_TOKEN or `hf auth login`.
rule upload:
    input:
        train=rules.segment.output.train,
        validation=rules.segment.output.validation,
        report=rules.segment.output.report,
    output:
        HUB_DATASET_RECEIPT,
    log:
        "logs/upload/upload.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        repo=config["hub"]["dataset_repo"] or "",
        private=str(config["hub"]["private"]).lower(),
        settings=hub_dataset_settings,
        base_model=config["base_model"],
        code=code("upload"),
    shell:
        "exec mindupload upload --repo {params.repo:q} --private {params.private} --settings {params.settings:q} "
        "--base-model {params.base_model:q} --train {input.train} --validation {input.validation} "
        "--report {input.report} --receipt {output} 2> {log}"


# The trained adapter -> a Hub model repo (private by default) with a model card and the AI-clone disclosure.
rule push_adapter:
    input:
        adapter=rules.train.output,
    output:
        "results/hub/model.json",
    log:
        "logs/push_adapter/push_adapter.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        repo=config["hub"]["model_repo"] or "",
        private=str(config["hub"]["private"]).lower(),
        settings=hub_model_settings,
        base_model=config["base_model"],
        code=code("push-adapter"),
    shell:
        "exec mindupload push-adapter --repo {params.repo:q} --private {params.private} --settings {params.settings:q} "
        "--base-model {params.base_model:q} --adapter {input.adapter} --receipt {output} 2> {log}"
