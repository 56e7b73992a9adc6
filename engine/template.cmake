# Chat templates: a Jinja interpreter (lexer, parser, evaluator, values,
# builtins, Unicode helpers) behind engine.h's engine_template_* API.
set(ENGINE_TEMPLATE_SOURCES template.c jinja_lex.c jinja_parse.c jinja_eval.c jinja_value.c
                            jinja_builtins.c jinja_unicode.c)
