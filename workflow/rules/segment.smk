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
        "results/dataset/stats.md",
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


# The training dataset: `snakemake --cores all dataset`.
rule dataset:
    input:
        rules.segment.output.train,
        rules.segment.output.validation,
        rules.dataset_stats.output,
    localrule: True
