# LoRA training with axolotl; an interrupted run resumes from its last checkpoint (kept in results/train/work).
# The axolotl config is rendered again where the job runs (its paths and device), from the checked settings.
rule train:
    input:
        axolotl_config=rules.axolotl_config.output,
        checked=rules.check.output.json,
        train=rules.segment.output.train,
        validation=rules.segment.output.validation,
        base_model=base_model_input,
        receipt=hub_receipt,
    output:
        directory("results/adapter"),
    log:
        "logs/train/train.log",
    benchmark:
        "results/benchmarks/train.tsv"
    conda:
        "../../envs/train.yaml"
    threads: workflow.cores
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=720,
    params:
        config=training_json,
        base_model=base_model_path,
        work_dir="results/train/work",
        prepared_dir="results/train/prepared",
        hub=hub_receipt_arg,
        code=code("train"),
        software=TRAINING_SOFTWARE,
        identity=hand_over(Identity.from_config(config)),
    shell:
        "exec mindupload train --axolotl-config {input.axolotl_config} --config-json {params.config:q} "
        "--base-model {params.base_model:q} --train {input.train} --validation {input.validation} "
        "--work-dir {params.work_dir} --prepared-dir {params.prepared_dir} {params.hub} "
        "--identity {params.identity:q} --output-dir {output} 2> {log}"


# Optional (`snakemake merge`): the adapter merged into the base model, for runtimes without LoRA support,
# its tokenizer carrying the chat template of the training layout.
rule merge:
    input:
        axolotl_config=rules.axolotl_config.output,
        adapter=rules.train.output,
    output:
        directory("results/merged"),
    log:
        "logs/merge/merge.log",
    conda:
        "../../envs/train.yaml"
    threads: workflow.cores
    resources:
        mem_mb=16000,
    params:
        work_dir="results/train/merge-work",
        software=TRAINING_SOFTWARE,
        identity=hand_over(Identity.from_config(config)),
        code=code("chat-template"),
    shell:
        "AXOLOTL_DO_NOT_TRACK=1 axolotl merge-lora {input.axolotl_config} --lora-model-dir {input.adapter} "
        "--output-dir {params.work_dir} > {log} 2>&1 && "
        "mindupload chat-template --model-dir {params.work_dir}/merged --identity {params.identity:q} 2>> {log} && "
        "mv {params.work_dir}/merged {output} && rm -r {params.work_dir}"
