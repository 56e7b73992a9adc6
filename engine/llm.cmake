# Inference: the compute pool, the forward pass of the supported
# architectures, sampling, and the generation loop.
set(ENGINE_LLM_SOURCES pool.c llm.c sample.c generate.c)
