"""M2M100: Facebook's many-to-many translation model (m2m100_418M / 1.2B, and NLLB-200, an M2M100 checkpoint)."""
