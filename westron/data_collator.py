"""DataCollatorForSeq2Seq: Hugging Face's collator for fine-tuning scripts, for PyTorch and TensorFlow.

A torch DataLoader (or a tf.data pipeline) hands it a list of tokenized examples; it pads them into
one batch. Labels are padded with -100, the id the losses ignore, and, given a model, the decoder
inputs are the labels shifted right by the model's own rule (`prepare_decoder_input_ids_from_labels`).
Westron's own trainers use westron/data/ batching instead; this is for scripts written for HF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from westron.tokenization_utils_base import as_tensor, to_id_lists

RETURN_TENSORS = ("pt", "tf", "np")


@dataclass
class DataCollatorForSeq2Seq:
    """Pads input_ids / attention_mask with the tokenizer, labels with label_pad_token_id (-100).

    padding: True / "longest" (to the longest row of the batch), "max_length" (to max_length) or
    False. return_tensors: "pt", "tf" or "np" (HF 5 accepts only "pt" and "np"; "tf" gives int32
    tensors, as the tokenizer does).

    Example (`examples`: rows of `tokenizer(source, text_target=target)`):

        >>> from westron import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq
        >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        >>> model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
        >>> collator = DataCollatorForSeq2Seq(tokenizer, model=model)
        >>> pairs = [("Speak, friend", "Sprich, Freund"), ("Enter", "Tritt ein")]
        >>> examples = [tokenizer(source, text_target=target) for source, target in pairs]
        >>> batch = collator(examples)
        >>> sorted(batch)
        ['attention_mask', 'decoder_input_ids', 'input_ids', 'labels']
        >>> float(model(**batch).loss) > 0
        True
    """

    tokenizer: Any
    model: Any = None
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def __post_init__(self):
        if self.return_tensors not in RETURN_TENSORS:
            raise ValueError(f"return_tensors must be 'pt', 'tf' or 'np', not {self.return_tensors!r}")

    def __call__(self, features: Sequence[Mapping[str, Any]], return_tensors: str | None = None):
        """features: one dict per example (input_ids, attention_mask, labels or label) -> a BatchEncoding."""
        return_tensors = return_tensors or self.return_tensors
        if return_tensors not in RETURN_TENSORS:
            raise ValueError(f"return_tensors must be 'pt', 'tf' or 'np', not {return_tensors!r}")
        if not features:
            raise ValueError("DataCollatorForSeq2Seq got an empty list of examples")
        label_name = "label" if "label" in features[0] else "labels"
        labels = [feature.get(label_name) for feature in features] if label_name in features[0] else None
        if labels is not None and all(label is None for label in labels):
            labels = None
        inputs = [{key: value for key, value in feature.items() if key != label_name} for feature in features]
        batch = self.tokenizer.pad(
            inputs,
            padding=self.padding,
            max_length=self.max_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors=return_tensors,
        )
        if labels is None:
            batch["labels"] = None  # as Hugging Face: the key is there, model(**batch) gets labels=None
            return batch
        batch["labels"] = as_tensor(self._pad_labels(to_id_lists(labels)), return_tensors)
        if self.model is not None and hasattr(self.model, "prepare_decoder_input_ids_from_labels"):
            batch["decoder_input_ids"] = self.model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        return batch

    def _pad_labels(self, labels: list[list[int]]) -> list[list[int]]:
        """Pads every row to the batch's label length with label_pad_token_id, on the tokenizer's padding side."""
        if self.padding is False or self.padding == "do_not_pad":
            return labels  # equal lengths, or as_tensor says why not
        if self.padding == "max_length" and self.max_length is not None:
            length = self.max_length
        else:
            length = max(len(row) for row in labels)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        left = self.tokenizer.padding_side == "left"
        padded = []
        for row in labels:
            fill = [self.label_pad_token_id] * (length - len(row))
            padded.append(fill + row if left else row + fill)
        return padded
