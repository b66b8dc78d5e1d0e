"""Parallel data: readers, the gettext corpus builder, cleaning and splitting, token batching.

Data flows one way: a reader yields `Pair` records -> cleaning and split -> JSON lines on disk ->
tokenizer -> token batches (numpy arrays) that both frameworks' trainers consume.
"""
