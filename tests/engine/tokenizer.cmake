# Tokenizer tests: unit tests on in-memory vocabularies (no reference
# files), and conformance with llama.cpp's vectors when ../shared/ref is there.
if(SHOAL_HAVE_REF)
  shoal_test(test_tokenizer_ref SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer_ref.c
             LIBS shoal_engine PkgConfig::CJSON LABEL conformance)
  target_compile_definitions(test_tokenizer_ref PRIVATE SHOAL_REF_DIR_DEFAULT="${SHOAL_REF_DIR}")
endif()

shoal_test(test_tokenizer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenizer.c
           LIBS shoal_engine Threads::Threads)
target_include_directories(test_tokenizer PRIVATE ${CMAKE_SOURCE_DIR}/engine)

# The fuzz target builds its vocabularies in code; the corpus replays in ctest.
shoal_fuzz(fuzz_tokenize ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_tokenize.c
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/tokenize shoal_engine)
target_include_directories(fuzz_tokenize_replay PRIVATE ${CMAKE_SOURCE_DIR}/engine)
if(SHOAL_FUZZ)
  target_include_directories(fuzz_tokenize PRIVATE ${CMAKE_SOURCE_DIR}/engine)
endif()

# `shoal tokenize` end to end (with the references: their ids through the CLI).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
if(SHOAL_HAVE_REF)
  add_test(NAME test_tokenize_cli
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenize_cli.py
                   $<TARGET_FILE:shoal> ${SHOAL_REF_DIR})
  set_tests_properties(test_tokenize_cli PROPERTIES LABELS conformance TIMEOUT 300)
else()
  add_test(NAME test_tokenize_cli
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_tokenize_cli.py
                   $<TARGET_FILE:shoal>)
  set_tests_properties(test_tokenize_cli PROPERTIES LABELS unit TIMEOUT 120)
endif()
