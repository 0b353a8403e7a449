# Turns -> random 2-10-turn segments in axolotl's input_output format, fitted to sequence_len.
rule segment:
    input:
        turns=local("results/turns.parquet"),
        base_model=base_model_input,
    output:
        train="results/dataset/train.jsonl",
        validation="results/dataset/validation.jsonl",
        report="results/dataset/segments.json",
    log:
        "logs/segment/segment.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        options=json_param(SegmentOptions.from_config(config)),
        identity=hand_over(Identity.from_config(config)),
        base_model=config["base_model"],
        tokenizer=tokenizer_identity(),
        code=code("segment"),
    shell:
        "RAYON_NUM_THREADS={threads} exec mindupload segment --options {params.options:q} "
        "--identity {params.identity:q} --base-model {params.base_model:q} --turns {input.turns} "
        "--train {output.train} --validation {output.validation} --report {output.report} 2> {log}"


# The stage reports -> a short human-readable stats file beside the dataset.
rule dataset_stats:
    input:
        sources=expand("results/messages/{source}.json", source=SOURCES),
        turns="results/turns.json",
        segments="results/dataset/segments.json",
        redaction=rules.redact.output.report,
    output:
        report(
            "results/dataset/stats.md",
            caption="../report/stats.rst",
            category="1. Dataset",
        ),
    log:
        "logs/dataset_stats/dataset_stats.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        code=code("stats"),
    shell:
        "exec mindupload stats --sources {input.sources} --turns {input.turns} "
        "--segments {input.segments} --redaction {input.redaction} --output {output} 2> {log}"


# Pictures of the dataset for the report (`snakemake --report report.html`): counts only, never text.
rule dataset_plots:
    input:
        messages=local(rules.redact.output.table),
        turns=local(rules.build_turns.output.table),
    output:
        messages=report(
            "results/dataset/plots/messages_per_month.svg",
            caption="../report/messages_per_month.rst",
            category="1. Dataset",
        ),
        turns=report(
            "results/dataset/plots/turns_by_split.svg",
            caption="../report/turns_by_split.rst",
            category="1. Dataset",
        ),
        own=report(
            "results/dataset/plots/own_vs_other.svg",
            caption="../report/own_vs_other.rst",
            category="1. Dataset",
        ),
    log:
        "logs/dataset_plots/dataset_plots.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        code=code("plots"),
    shell:
        "exec mindupload plots --messages {input.messages} --turns {input.turns} "
        "--messages-per-month {output.messages} --turns-by-split {output.turns} --own-vs-other {output.own} 2> {log}"


# The training dataset: `snakemake --cores all dataset`.
rule dataset:
    input:
        rules.segment.output.train,
        rules.segment.output.validation,
        rules.dataset_stats.output,
        rules.dataset_plots.output,
    localrule: True
