# The vocabulary and its tokenizers: SPM, byte-level BPE (PCRE2
# pre-tokenizers), WordPiece; detokenization; generated Unicode tables.
set(ENGINE_TOKENIZER_SOURCES vocab.c tokenize.c tok_spm.c tok_bpe.c tok_wpm.c pretok.c detok.c
                             unicode.c unicode_data.c)
