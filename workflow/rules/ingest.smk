# One chat export -> its normalized message table (Parquet) and a report of what was read.
# The tables before redaction are temporary: deleted once `redact` has read them.
rule parse_source:
    input:
        source_path,
    output:
        table=temp(local("results/messages/{source}.parquet")),
        report="results/messages/{source}.json",
    log:
        "logs/parse_source/{source}.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        spec=source_options,
        code=parse_code,
    shell:
        "exec mindupload parse --spec {params.spec:q} --table {output.table} --report {output.report} 2> {log}"


# All exports -> one message table.
rule combine_messages:
    input:
        local(expand("results/messages/{source}.parquet", source=SOURCES)),
    output:
        temp(local("results/messages.parquet")),
    log:
        "logs/combine_messages/combine_messages.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        code=code("combine"),
    shell:
        "exec mindupload combine {input} --table {output} 2> {log}"
