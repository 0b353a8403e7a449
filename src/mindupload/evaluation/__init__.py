"""Evaluation (rule sample_replies): what the trained clone says on held-out conversations."""
