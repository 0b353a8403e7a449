# A few replies from the trained clone to held-out conversations, rendered by the chat prompt's code.
rule sample_replies:
    input:
        adapter=rules.train.output,
        validation=rules.segment.output.validation,
        base_model=base_model_input,
    output:
        report(
            "results/samples.md",
            caption="../report/samples.rst",
            category="4. Sample replies",
        ),
    log:
        "logs/sample_replies/sample_replies.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        base_model=base_model_path,
        identity=hand_over(Identity.from_config(config)),
        seed=config["segments"]["seed"],
        code=code("sample"),
    shell:
        "exec mindupload sample --base-model {params.base_model:q} --adapter {input.adapter} "
        "--identity {params.identity:q} --validation {input.validation} --seed {params.seed} "
        "--out {output} 2> {log}"
