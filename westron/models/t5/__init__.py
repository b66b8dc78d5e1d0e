"""T5: t5, t5 v1.1, flan-t5 and mT5 checkpoints (one architecture, one set of classes)."""
