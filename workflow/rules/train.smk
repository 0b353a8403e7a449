# LoRA training with axolotl; an interrupted run resumes from its last checkpoint (kept in results/train/work).
rule train:
    input:
        axolotl_config=rules.axolotl_config.output,
        checked=rules.check.output.json,
    output:
        directory("results/adapter"),
    log:
        "logs/train/train.log",
    benchmark:
        "results/benchmarks/train.tsv"
    threads: workflow.cores
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=720,
    conda:
        "../../envs/train.yaml"
    shell:
        "mindupload train --axolotl-config {input.axolotl_config} --output-dir {output} 2> {log}"
