set(ENGINE_GGUF_SOURCES gguf.c model.c)
