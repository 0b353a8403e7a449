# Run target, not an output (`snakemake serve`): the chat page with the trained clone until Ctrl-C.
# Its messages (the address, warnings, load errors) reach the terminal as well as the log.
rule serve:
    input:
        adapter=rules.train.output,
        base_model=base_model_input,
    log:
        "logs/serve/serve.log",
    localrule: True
    conda:
        "../../envs/serve.yaml"
    params:
        base_model=base_model_path,
        identity=hand_over(Identity.from_config(config)),
        settings=lambda wildcards: json.dumps(config["serve"], sort_keys=True),
        sequence_len=config["segments"]["sequence_len"],
        code=code("serve"),
    shell:
        "exec mindupload serve --base-model {params.base_model:q} --adapter {input.adapter} "
        "--identity {params.identity:q} --settings {params.settings:q} "
        "--sequence-len {params.sequence_len} 2> >(tee {log} >&2)"


# Run target, not an output (`snakemake api`): an OpenAI-compatible API (/v1/chat/completions) over the trained
# clone on serve.host:serve.api_port until Ctrl-C; a key from MINDUPLOAD_API_KEY when it is set.
rule api:
    input:
        adapter=rules.train.output,
        base_model=base_model_input,
    log:
        "logs/api/api.log",
    localrule: True
    conda:
        "../../envs/serve.yaml"
    params:
        base_model=base_model_path,
        identity=hand_over(Identity.from_config(config)),
        settings=lambda wildcards: json.dumps(config["serve"], sort_keys=True),
        sequence_len=config["segments"]["sequence_len"],
        code=code("api"),
    shell:
        "exec mindupload api --base-model {params.base_model:q} --adapter {input.adapter} "
        "--identity {params.identity:q} --settings {params.settings:q} "
        "--sequence-len {params.sequence_len} 2> >(tee {log} >&2)"
