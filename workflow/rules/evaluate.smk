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


# What the evaluation needs from the turns table (which stays on this machine): held-out conversations as the
# chat would prompt them, a few training exchanges for the prompted baseline, the training turns.
rule eval_inputs:
    input:
        local(rules.build_turns.output.table),
    output:
        "results/eval/inputs.json",
    log:
        "logs/eval_inputs/eval_inputs.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        identity=hand_over(Identity.from_config(config)),
        options=lambda wildcards: json.dumps(
            {k: config["evaluation"][k] for k in ("generations", "prompt_turns")}
        ),
        code=code("eval-inputs"),
    shell:
        "exec mindupload eval-inputs --turns {input} --identity {params.identity:q} "
        "--options {params.options:q} --out {output} 2> {log}"


# Does it talk like you? Base, prompted and tuned model on held-out conversations: numbers and a report.
rule evaluate:
    input:
        adapter=rules.train.output,
        validation=rules.segment.output.validation,
        inputs=rules.eval_inputs.output[0],
        base_model=base_model_input,
    output:
        json="results/eval/metrics.json",
        html=report(
            "results/eval/report.html",
            caption="../report/evaluation.rst",
            category="5. Evaluation",
        ),
    log:
        "logs/evaluate/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    conda:
        "../../envs/train.yaml"
    threads: workflow.cores
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        base_model=base_model_path,
        identity=hand_over(Identity.from_config(config)),
        options=lambda wildcards: json.dumps(config["evaluation"], sort_keys=True),
        sequence_len=config["segments"]["sequence_len"],
        code=code("evaluate"),
        software=TRAINING_SOFTWARE,
    shell:
        "exec mindupload evaluate --base-model {params.base_model:q} --adapter {input.adapter} "
        "--identity {params.identity:q} --validation {input.validation} --inputs {input.inputs} "
        "--options {params.options:q} --sequence-len {params.sequence_len} "
        "--out-json {output.json} --out-html {output.html} 2> {log}"
