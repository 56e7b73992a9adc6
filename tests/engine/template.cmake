# Chat templates: unit tests (no reference files), the reference
# conformance suite through the API and through the real CLI, and the fuzz
# target's corpus replay.
shoal_test(test_template SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_template.c
           LIBS shoal_engine Threads::Threads)

shoal_fuzz(fuzz_template ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_template.c
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/template shoal_engine)

if(SHOAL_HAVE_REF)
  shoal_test(test_template_conformance
             SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_template_conformance.c
             LIBS shoal_engine LABEL conformance)
  target_compile_definitions(test_template_conformance PRIVATE
    SHOAL_REF_DIR_DEFAULT="${SHOAL_REF_DIR}")
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  add_test(NAME test_template_cli
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/test_template_cli.py
                   $<TARGET_FILE:shoal> ${SHOAL_REF_DIR})
  set_tests_properties(test_template_cli PROPERTIES LABELS conformance TIMEOUT 300)
endif()
