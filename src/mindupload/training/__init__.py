"""Training (rules axolotl_config, check, train): the axolotl config, axolotl's own preprocess with our checks,
and LoRA training."""
