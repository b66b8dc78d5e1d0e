"""`westron demo`: the machinery in a minute (the main job is `westron quickstart`).

Builds a tiny Marian checkpoint (a sentencepiece tokenizer trained on a few sentences, random
weights) and translates with it in PyTorch and in TensorFlow. The weights are untrained, so the
"translations" are noise: the demo shows the machinery (one checkpoint, two frameworks, the same
output), not translation quality; `westron quickstart` trains a real model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile

DEMO_SENTENCES = [
    "The common tongue is spoken by every people of the West.",
    "One checkpoint, two frameworks.",
    "Translation models live natively in PyTorch and TensorFlow.",
    "",
    "Speak, friend, and enter.",
]

# A small English corpus for the demo tokenizer (sentencepiece needs some text to learn pieces from).
_CORPUS = """\
The common tongue is spoken by every people of the West.
In the beginning there were two frameworks and one model.
A translator reads a sentence in one language and writes it in another.
Speak, friend, and enter.
The road goes ever on and on, down from the door where it began.
Not all those who wander are lost.
Translation models live natively in PyTorch and TensorFlow.
One checkpoint feeds every reader: config.json and safetensors.
Beam search keeps several hypotheses and returns the best one.
Greedy search takes the most likely token at every step.
The encoder reads the source; the decoder writes the target.
Attention lets every position look at every other position.
"""


def build_demo_checkpoint(folder: str, seed: int = 0) -> str:
    """Writes tokenizer files and a random-weight tiny Marian checkpoint into `folder`."""
    import sentencepiece as spm
    import torch

    from westron.file_utils import atomic_write
    from westron.models.marian.configuration_marian import MarianConfig
    from westron.models.marian.modeling_marian import MarianMTModel

    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        corpus_path = os.path.join(scratch, "corpus.txt")
        with open(corpus_path, "w", encoding="utf-8") as handle:
            handle.write(_CORPUS * 4)
        spm.SentencePieceTrainer.train(
            input=corpus_path,
            model_prefix=os.path.join(scratch, "spm"),
            vocab_size=120,
            model_type="unigram",
            character_coverage=1.0,
            minloglevel=2,
        )
        with open(os.path.join(scratch, "spm.model"), "rb") as handle:
            model_bytes = handle.read()
        processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    for name in ("source.spm", "target.spm"):
        with atomic_write(os.path.join(folder, name), "wb") as handle:
            handle.write(model_bytes)

    # opus-mt's layout: </s> = 0, <unk> = 1, the pieces, <pad> last (also the decoder start).
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in pieces:
        if piece not in vocab and piece not in ("<s>", "<unk>", "</s>"):
            vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    with atomic_write(os.path.join(folder, "vocab.json")) as handle:
        json.dump(vocab, handle, ensure_ascii=False, indent=1)
    tokenizer_config = {"source_lang": "en", "target_lang": "en", "model_max_length": 128, "separate_vocabs": False}
    with atomic_write(os.path.join(folder, "tokenizer_config.json")) as handle:
        json.dump(tokenizer_config, handle, indent=2)

    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=128,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=vocab["<pad>"],
        decoder_start_token_id=vocab["<pad>"],
        eos_token_id=0,
        forced_eos_token_id=0,
        bad_words_ids=[[vocab["<pad>"]]],
        num_beams=4,
        max_length=24,
        init_std=0.3,  # larger than training's 0.02, so untrained outputs differ from sentence to sentence
    )
    torch.manual_seed(seed)
    MarianMTModel(config).save_pretrained(folder)
    return folder


def run_demo(folder: str = "demo-model", framework: str | None = None) -> None:
    from westron.pipelines import pipeline

    if not os.path.exists(os.path.join(folder, "config.json")):
        from westron.file_utils import check_replaceable_folder

        check_replaceable_folder(folder, "config.json")  # a file, or a folder of other files: not the demo's to fill
        print(f"building a tiny random-weight Marian checkpoint in {folder}/ ...")
        build_demo_checkpoint(folder)
    available = [fw for fw, module in (("pt", "torch"), ("tf", "tensorflow")) if importlib.util.find_spec(module)]
    frameworks = [framework] if framework else available
    outputs = {}
    for fw in frameworks:
        translator = pipeline("translation", model=folder, framework=fw)
        texts = [line for line in DEMO_SENTENCES if line]
        outputs[fw] = [result["translation_text"] for result in translator(texts, num_beams=4)]
    texts = [line for line in DEMO_SENTENCES if line]
    for i, text in enumerate(texts):
        print(f"\nsource: {text}")
        for fw in frameworks:
            print(f"  {fw}: {outputs[fw][i]}")
    if len(frameworks) == 2:
        same = outputs["pt"] == outputs["tf"]
        print(f"\nPyTorch and TensorFlow outputs {'are identical' if same else 'DIFFER'} on the same checkpoint.")
    print("(random weights: the output is noise; the demo shows the machinery, not translation quality)")
