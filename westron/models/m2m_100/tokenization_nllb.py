"""NllbTokenizer: the tokenizer of the facebook/nllb-200 checkpoints (M2M100 models), ids equal to Hugging Face's.

An NLLB folder holds a SentencePiece BPE model, sentencepiece.bpe.model, read with fairseq's
offset: <s> = 0, <pad> = 1, </s> = 2, <unk> = 3, then SentencePiece's piece k at id k + 1. After
the pieces come the FLORES-200 language codes (`eng_Latn`, `heb_Hebr`, `jpn_Jpan`, ...: the
folder's additional_special_tokens, by default the 202 codes below) and last <mask>. A folder
whose tokenizer_config.json has added_tokens_decoder keeps the ids written there.

A source is `src_lang pieces </s>` and a target `tgt_lang pieces </s>` (with
`legacy_behaviour=True`, as before transformers 4.35: `pieces </s> lang`). Generation starts from
</s> and is forced to emit the target language code first: `get_lang_id(tgt_lang)` is that
forced BOS id, as on M2M100Tokenizer.

Hugging Face 5 tokenizes NLLB with its `tokenizers` library, and the ids here follow that
pipeline, not SentencePiece's own: the model's character normalisation, runs of blanks cut to one
but a leading or trailing blank kept (a trailing one is a "▁" token of its own), "▁" before each
word, BPE per word (SentencePiece's BPE, which gives the same pieces). Decoding follows Hugging
Face's Metaspace decoder (special tokens verbatim, "▁" a blank, none before the first token), and
as there clean_up_tokenization_spaces is ignored: it corrupts BPE output.

Known to differ on unusual text only: Hugging Face's charsmap normaliser drops the rest of a
short grapheme after its longest known prefix (a letter with two stacked accents), and it finds
<mask> in normalised text, so a zero-width space before <mask> (a blank once normalised) is
eaten by <mask>'s lstrip there, while here it stays a "▁".

Where Hugging Face 5 and fairseq disagree, fairseq wins: for a folder that lists the language
codes but not their ids, Hugging Face 5 gives <mask> the first id after the pieces and the codes
the ids after it, which does not fit the checkpoints (eng_Latn is 256047 in nllb-200).
"""

from __future__ import annotations

import os
import re
from typing import Any

from westron.models.m2m_100.tokenization_m2m_100 import LanguageCodesMixin
from westron.sentencepiece_utils import (
    SPIECE_UNDERLINE,
    load_charsmap_normalizer,
    load_spm,
    metaspace_decode,
    save_spm_model,
)
from westron.tokenization_utils import PreTrainedTokenizer
from westron.tokenization_utils_base import (
    AddedToken,
    token_text,
)


# FLORES-200 codes, in the order of the nllb-200 checkpoints' vocabulary.
FAIRSEQ_LANGUAGE_CODES = """
    ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi apc_Arab
    arb_Arab ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn
    bak_Cyrl bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt
    bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab crh_Latn cym_Latn
    dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn eus_Latn
    ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gla_Latn
    gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn
    hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn
    kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl kbp_Latn
    kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn lao_Laoo
    lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn
    luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Latn mkd_Cyrl plt_Latn mlt_Latn
    mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn nob_Latn npi_Deva
    nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn pol_Latn
    por_Latn prs_Arab pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng
    scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn
    spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn szl_Latn tam_Taml
    tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng tpi_Latn tsn_Latn
    tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab
    uzn_Latn vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans
    zho_Hant zul_Latn
""".split()

# What counts as a language code among the extra special tokens (a fine-tuned model may add some).
LANGUAGE_CODE_PATTERN = re.compile(r"[a-z]{2,3}_[A-Z][a-z]{3}")

# fairseq's dictionary starts with these, whatever the SentencePiece model puts first.
FAIRSEQ_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
FAIRSEQ_OFFSET = 1

_BLANK_RUNS = re.compile(" {2,}")


class NllbTokenizer(LanguageCodesMixin, PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "sentencepiece.bpe.model"}

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        sep_token: str = "</s>",
        cls_token: str = "<s>",
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        mask_token: str = "<mask>",
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        additional_special_tokens: list | None = None,
        extra_special_tokens: list | None = None,
        legacy_behaviour: bool = False,
        added_tokens_decoder: dict | None = None,
        **kwargs: Any,
    ):
        self.vocab_file = os.fspath(vocab_file)
        self.sp_model = load_spm(vocab_file, {})
        self._normalizer = load_charsmap_normalizer(self.sp_model)
        self.legacy_behaviour = bool(legacy_behaviour)

        # fairseq's four first, then piece k at k + 1 (the model's own <unk>, <s>, </s> are the four).
        self.encoder = {token: index for index, token in enumerate(FAIRSEQ_SPECIAL_TOKENS)}
        for index in range(self.sp_model.get_piece_size()):
            piece = self.sp_model.id_to_piece(index)
            if piece not in self.encoder:
                self.encoder[piece] = index + FAIRSEQ_OFFSET
        self.decoder = {index: token for token, index in self.encoder.items()}

        extras = extra_special_tokens if extra_special_tokens is not None else additional_special_tokens
        extras = [token_text(token) for token in extras] if extras is not None else list(FAIRSEQ_LANGUAGE_CODES)

        # The codes, then <mask>, take fairseq's ids after the pieces unless the folder fixes them.
        added = {int(index): AddedToken.from_json(token) for index, token in (added_tokens_decoder or {}).items()}
        listed = {token.content for token in added.values()}
        next_id = max([*self.decoder, *added], default=-1) + 1
        # <mask> eats the blank before it (Hugging Face's default), unless the folder says otherwise.
        if isinstance(mask_token, str):
            mask = AddedToken(mask_token, lstrip=True, special=True, normalized=True)
        else:
            mask = AddedToken.from_json(mask_token)
            mask.special = True
        for token in [code for code in extras if LANGUAGE_CODE_PATTERN.fullmatch(code)] + [mask]:
            token = token if isinstance(token, AddedToken) else AddedToken(token, special=True)
            if token.content not in listed and token.content not in self.encoder:
                added[next_id] = token
                listed.add(token.content)
                next_id += 1

        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            sep_token=sep_token,
            cls_token=cls_token,
            unk_token=unk_token,
            pad_token=pad_token,
            mask_token=mask.content,
            extra_special_tokens=extras,
            added_tokens_decoder=added,
            **kwargs,
        )
        self._unk_id = self.convert_tokens_to_ids(self.unk_token)
        self._src_lang = self._check_lang(src_lang if src_lang is not None else "eng_Latn")
        self._tgt_lang = self._check_lang(tgt_lang) if tgt_lang is not None else None

    # ---- languages --------------------------------------------------------------------------------

    @property
    def lang_code_to_id(self) -> dict[str, int]:
        """The language codes (the extra special tokens that look like one, then any other special added
        token that does: add_special_tokens may have replaced the extra ones, as in HF) and their ids."""
        added_special = [token.content for token in self._added_tokens.values() if token.special]
        codes = [token for token in self._extra_special_tokens + added_special if LANGUAGE_CODE_PATTERN.fullmatch(token)]
        return {code: self._added_ids[code] for code in dict.fromkeys(codes)}

    # ---- hooks ------------------------------------------------------------------------------------

    def base_vocab(self) -> dict[str, int]:
        return self.encoder

    def _tokenize(self, text: str, target: bool = False) -> list[str]:
        # Hugging Face's pipeline: normalise, cut runs of blanks to one, "▁" before each word and
        # BPE per word. SentencePiece does the last two for the words; a trailing blank is a "▁" of
        # its own there (SentencePiece drops it), a leading one is the first word's "▁" anyway.
        text = _BLANK_RUNS.sub(" ", self._normalizer.normalize(text))
        if not text:
            return []
        pieces = self.sp_model.encode(text, out_type=str)
        return pieces + [SPIECE_UNDERLINE] if text.endswith(" ") else pieces

    def _convert_token_to_id(self, token: str, target: bool = False) -> int:
        index = self.encoder.get(token)
        return index if index is not None else self._unk_id

    def _convert_id_to_token(self, index: int, **decode_options: Any) -> str:
        token = self.decoder.get(index)
        if token is None:
            raise IndexError(f"token id {index} is outside the vocabulary ({len(self)} ids)")
        return token

    def convert_tokens_to_string(self, tokens: list[str], **decode_options: Any) -> str:
        return metaspace_decode(tokens)

    def _decode(self, ids, skip_special_tokens, clean_up_tokenization_spaces, decode_options) -> str:
        # Hugging Face's tokenizers library drops ids it has no token for, and does not clean up BPE text.
        ids = [ids] if isinstance(ids, int) else ids
        known = [index for index in ids if index in self.decoder or index in self._added_tokens]
        return super()._decode(known, skip_special_tokens, False, decode_options)

    def build_inputs_with_special_tokens(self, token_ids: list[int], target: bool = False) -> list[int]:
        """`lang ids </s>` (`ids </s> lang` with legacy_behaviour); targets use tgt_lang, else src_lang."""
        lang = (self._tgt_lang or self._src_lang) if target else self._src_lang
        lang_id = self._added_ids[lang]
        if self.legacy_behaviour:
            return token_ids + [self.eos_token_id, lang_id]
        return [lang_id] + token_ids + [self.eos_token_id]

    # ---- files ------------------------------------------------------------------------------------

    def tokenizer_config(self) -> dict[str, Any]:
        config = super().tokenizer_config()
        config.update(src_lang=self._src_lang, tgt_lang=self._tgt_lang, legacy_behaviour=self.legacy_behaviour)
        return config

    def save_vocabulary(self, save_directory: str) -> list[str]:
        path = os.path.join(save_directory, "sentencepiece.bpe.model")
        return [save_spm_model(self.sp_model, self.vocab_file, path)]
