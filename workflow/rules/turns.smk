# Messages -> turns (runs of one sender merged), sessions, and the train/validation split by time.
rule build_turns:
    input:
        local(rules.redact.output.table),
    output:
        table=local("results/turns.parquet"),
        report="results/turns.json",
    log:
        "logs/build_turns/build_turns.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        options=json_param(TurnOptions.from_config(config)),
        code=code("turns"),
    shell:
        "exec mindupload turns --options {params.options:q} --messages {input} "
        "--table {output.table} --report {output.report} 2> {log}"
