"""Marian: the architecture of the Helsinki-NLP opus-mt checkpoints."""
