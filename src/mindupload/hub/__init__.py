"""The Hugging Face Hub (rules upload, push_adapter): an edge; no stage imports it."""
