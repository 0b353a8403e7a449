# Personal data in the message table -> typed placeholders (<PHONE>, <EMAIL>, ...), names -> the label.
rule redact:
    input:
        local("results/messages.parquet"),
    output:
        table=local("results/messages_redacted.parquet"),
        report="results/reports/redaction.json",
        markdown=report(
            "results/reports/redaction.md",
            caption="../report/redaction.rst",
            category="2. Privacy",
        ),
    log:
        "logs/redact/redact.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        options=hand_over(RedactOptions.from_config(config)),
        code=code("redact"),
    shell:
        "exec mindupload redact --options {params.options:q} --messages {input} --table {output.table} "
        "--report {output.report} --markdown {output.markdown} 2> {log}"


# `snakemake forget`: delete every file derived from your chats (not your exports, not the public base model),
# and the Hugging Face cache's copy of the pushed dataset. Not part of `all`. The log lists the removed paths.
rule forget:
    log:
        "logs/forget/forget.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        hub_dataset=config["hub"]["dataset_repo"] or "",
    shell:
        "exec mindupload forget --keep {log} --hub-dataset={params.hub_dataset:q} > >(tee {log})"
