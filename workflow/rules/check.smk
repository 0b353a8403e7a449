# Our config -> the axolotl config, validated by axolotl's own schema on CPU before anything runs.
rule axolotl_config:
    input:
        train=rules.segment.output.train,
        validation=rules.segment.output.validation,
        base_model=base_model_input,
        receipt=hub_receipt,
    output:
        "results/train/axolotl.yaml",
    log:
        "logs/axolotl_config/axolotl_config.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        config=training_json,
        base_model=config["base_model"],
        work_dir="results/train/work",
        prepared_dir="results/train/prepared",
        hub=hub_receipt_arg,
        code=code("axolotl-config"),
    shell:
        "exec mindupload axolotl-config --config-json {params.config:q} --base-model {params.base_model:q} "
        "--train {input.train} --validation {input.validation} --output-dir {params.work_dir} "
        "--prepared-dir {params.prepared_dir} {params.hub} --out {output} 2> {log}"


# axolotl's own preprocess, then every example checked (labels, BOS/EOS, length) -> a readable report.
rule check:
    input:
        axolotl_config=rules.axolotl_config.output,
        train=rules.segment.output.train,
        validation=rules.segment.output.validation,
        receipt=hub_receipt,
    output:
        html=report(
            "results/check/report.html",
            caption="../report/check.rst",
            category="3. Format check",
        ),
        json="results/check/report.json",
        lengths=report(
            "results/check/lengths.svg",
            caption="../report/segment_lengths.rst",
            category="3. Format check",
        ),
    log:
        "logs/check/check.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        report_dir=subpath(output.json, parent=True),
        hub=hub_receipt_arg,
        code=code("check"),
        software=TRAINING_SOFTWARE,
    shell:
        "exec mindupload check --axolotl-config {input.axolotl_config} --train {input.train} "
        "--validation {input.validation} --report-dir {params.report_dir} {params.hub} 2> {log}"
