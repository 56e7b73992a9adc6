# Tests for engine/gguf.c and engine/model.c (and `shoal model inspect`):
# unit tests on GGUF files built in memory, the fuzz corpus replay, and,
# when ../shared/ref is there, conformance against the reference models.
shoal_test(test_gguf SOURCES test_gguf.c LIBS shoal_engine)

shoal_fuzz(fuzz_gguf ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_gguf.c
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/gguf shoal_engine)

# The CLI end to end; with the reference files it also inspects all of them.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
if(SHOAL_HAVE_REF)
  shoal_test(test_gguf_ref SOURCES test_gguf_ref.c LIBS shoal_engine LABEL conformance)
  target_compile_definitions(test_gguf_ref PRIVATE SHOAL_REF_DIR="${SHOAL_REF_DIR}")
  add_test(NAME test_gguf_inspect_cli
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_model_inspect.py
                   $<TARGET_FILE:shoal> ${SHOAL_REF_DIR})
  set_tests_properties(test_gguf_inspect_cli PROPERTIES LABELS conformance TIMEOUT 300)
else()
  add_test(NAME test_gguf_inspect_cli
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_model_inspect.py
                   $<TARGET_FILE:shoal>)
  set_tests_properties(test_gguf_inspect_cli PROPERTIES LABELS unit TIMEOUT 120)
endif()
