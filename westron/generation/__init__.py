"""Decoding: GenerationConfig and one search implementation per framework.

`westron.generation.torch_search` (PyTorch) and `westron.generation.tf_search` (TensorFlow)
implement greedy, beam and sampling search over the small interface every Westron
encoder-decoder model exposes; the models themselves hold no decoding code.
"""

from westron.generation.configuration_utils import GenerationConfig

__all__ = ["GenerationConfig"]
