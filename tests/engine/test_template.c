/* test_template.c: chat-template unit tests needing no reference files: a
 * table of small templates and their renders (expectations made with Python
 * jinja2 3.1.6 configured as Hugging Face does, then reviewed), errors with
 * line:col, the caps that bound hostile templates, and the API around them
 * (ChatML fallback, tools absent vs null, strftime_now, threads). */
#include "common.h"
#include "engine.h"
#include "engine_internal.h"
#include "jinja.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The context every table row renders with: messages, tools, and extra
 * variables n s i f l d t e big neg words nested. */
static const char ctx_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
    "\"Hi <there> & 'you' \\\"q\\\"\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"i"
    "d\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1,"
    " 2.5, null, true]}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"r\\\": 1}\"}, {\"role\": \"user\", \"c"
    "ontent\": \"  \\u00dcn\\u00efc\\u00f6d\\u00e9 \\u4f60\\u597d \\ud83d\\udc4d\\ud83c\\udffd  \"}], \"t"
    "ools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters"
    "\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}}}}], \"extra\": {\"n\": nul"
    "l, \"s\": \"Hello World\", \"i\": 42, \"f\": 2.5, \"l\": [3, 1, 2], \"d\": {\"b\": 2, \"a\": 1, \"items"
    "\": \"x\"}, \"t\": true, \"e\": \"\", \"big\": 1234567, \"neg\": -7, \"words\": [\"b\", \"A\", \"c\", \"a\"],"
    " \"nested\": {\"x\": {\"y\": [10, 20, {\"z\": \"deep\"}]}}}}"
;

struct row {
    const char *src;
    const char *want; /* NULL: the render (or parse) must fail */
};

static const struct row rows[] = {
    {"{{ s }}|{{ i }}|{{ f }}|{{ n }}|{{ t }}|{{ l }}|{{ d }}|{{ e }}|{{ undefined_thing }}|",
     "Hello World|42|2.5|None|True|[3, 1, 2]|{'b': 2, 'a': 1, 'items': 'x'}|||"},
    {"{{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1+0.2 }} {{ 1/3 }} {{ 2**62 }} {{ -0.0 }} {{ 1e300*10 }} {{ 3.0e5 }} {{ 123456789.123 }}",
     "1.0 1e+16 1e-05 0.30000000000000004 0.3333333333333333 4611686018427387904 -0.0 1e+301 300000.0 123456789.123"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -2 }} {{ 10 / 4 }} {{ 4 / 2 }}",
     "3 -4 2 -2 3.0 0.5 1024 0.25 2.5 2.0"},
    {"{{ \"a\" ~ 1 ~ none ~ true ~ [1] }}|{{ \"ab\" * 3 }}|{{ [1,2] + [3] }}|{{ (1,) + (2,3) }}|{{ \"x\" if t else \"y\" }}|{{ \"x\" if n }}|",
     "a1NoneTrue[1]|ababab|[1, 2, 3]|(1, 2, 3)|x||"},
    {"{{ s.upper() }} {{ s.lower() }} {{ s.title() }} {{ \"hello world\".capitalize() }} {{ s.swapcase() }} {{ s.startswith(\"Hell\") }} {{ s.endswith((\"x\",\"ld\")) }} {{ s.find(\"o\") }} {{ s.rfind(\"o\") }} {{ s.count(\"l\") }} {{ s.replace(\"l\", \"L\", 2) }}",
     "HELLO WORLD hello world Hello World Hello world hELLO wORLD True True 4 7 3 HeLLo World"},
    {"{{ \"  a b  \".strip() }}|{{ \"xxaxx\".strip(\"x\") }}|{{ \"  a \".lstrip() }}|{{ \" a  \".rstrip() }}|{{ \"a,b,,c\".split(\",\") }}|{{ \" a  b \".split() }}|{{ \"a b c\".split(\" \", 1) }}|{{ \"a b c\".rsplit(\" \", 1) }}|{{ \"l1\\nl2\\r\\nl3\".splitlines() }}",
     "a b|a|a | a|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']|['l1', 'l2', 'l3']"},
    {"{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ s[::2] }}{{ l[1:] }}{{ l[:-1] }}{{ l[::-1] }}{{ l[10] }}{{ s[100] }}|{{ \"\303\251\344\275\240\345\245\275\"[1] }}{{ \"\303\251\344\275\240\345\245\275\"[::-1] }}",
     "HdelldlroW olleHHloWrd[1, 2][3, 1][2, 1, 3]|\344\275\240\345\245\275\344\275\240\303\251"},
    {"{% for x in l %}{{ loop.index }}:{{ loop.index0 }}:{{ loop.revindex }}:{{ loop.revindex0 }}:{{ loop.first }}:{{ loop.last }}:{{ loop.length }}:{{ loop.previtem }}:{{ loop.nextitem }};{% endfor %}",
     "1:0:3:2:True:False:3::1;2:1:2:1:False:False:3:3:2;3:2:1:0:False:True:3:1:;"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for k, v in d|dictsort %}{{k}}{{v}}{% endfor %}|{% for c in \"h\303\251llo\" %}[{{c}}]{% endfor %}",
     "b=2,a=1,items=x,|baitems|a1b2itemsx|[h][\303\251][l][l][o]"},
    {"{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
     "1/2:3 2/2:2 |empty"},
    {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "0134"},
    {"{% set ns = namespace(c=0, items=[]) %}{% for x in l %}{% set ns.c = ns.c + x %}{% set ns.items = ns.items + [x * 2] %}{% endfor %}{{ ns.c }} {{ ns.items }} {{ ns }}",
     "6 [6, 2, 4] <Namespace {'c': 6, 'items': [6, 2, 4]}>"},
    {"{% set x = 1 %}{% for i in l %}{% set x = i %}{{ x }}{% endfor %}{{ x }}|{% if t %}{% set y = 5 %}{% endif %}{{ y }}",
     "3121|5"},
    {"{% macro m(a, b=2, c=\"z\") %}[{{ a }}|{{ b }}|{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, c=\"q\") }}{{ m() }}{{ m }}",
     "[1|2|z][1|3|z][1|2|q][|2|z]<Macro 'm'>"},
    {"{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
     "54321"},
    {"{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner {{ s }}{% endcall %}|{% macro w2(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) w2(21) %}v={{ v }}{% endcall %}",
     "<inner Hello World>|v=42"},
    {"{{ l|length }} {{ l|first }} {{ l|last }} {{ l|sum }} {{ l|min }} {{ l|max }} {{ l|sort }} {{ l|sort(reverse=true) }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ words|unique|list }} {{ words|map(\"upper\")|join(\",\") }}",
     "3 3 2 6 1 3 [1, 2, 3] [3, 2, 1] ['A', 'a', 'b', 'c'] ['A', 'a', 'b', 'c'] ['b', 'A', 'c'] B,A,C,A"},
    {"{{ messages|map(attribute=\"role\")|join(\", \") }}|{{ messages|selectattr(\"role\", \"equalto\", \"user\")|list|length }}|{{ messages|rejectattr(\"content\")|map(attribute=\"role\")|list }}|{{ l|select(\"odd\")|list }}|{{ l|reject(\"odd\")|list }}",
     "system, user, assistant, tool, user|2|['assistant']|[3, 1]|[2]"},
    {"{{ d|tojson }}|{{ messages[2]|tojson }}|{{ l|tojson(indent=2) }}|{{ \"\303\251\\\"\\n\\t<>&'\"|tojson }}|{{ {\"a\": 1.0, \"b\": none, \"c\": true}|tojson }}|{{ d|tojson(sort_keys=true) }}|{{ \"\303\251\"|tojson(ensure_ascii=true) }}",
     "{\"b\": 2, \"a\": 1, \"items\": \"x\"}|{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1, 2.5, null, true]}}}]}|[\n  3,\n  1,\n  2\n]|\"\303\251\\\"\\n\\t<>&'\"|{\"a\": 1.0, \"b\": null, \"c\": true}|{\"a\": 1, \"b\": 2, \"items\": \"x\"}|\"\\u00e9\""},
    {"{{ \" x \"|trim }}|{{ \"xyx\"|trim(\"x\") }}|{{ n|trim }}|{{ 5|string }}|{{ none|string }}|{{ \"a\\nb\\n\\nc\"|indent(2) }}|{{ \"a\\nb\"|indent(2, true) }}|{{ \"a\\n\\nb\"|indent(width=3, first=true, blank=true) }}",
     "x|y|None|5|None|a\n  b\n\n  c|  a\n  b|   a\n   \n   b"},
    {"{{ undefined_x|default(\"dflt\") }}|{{ e|default(\"d2\") }}|{{ e|default(\"d3\", true) }}|{{ n|default(\"d4\") }}|{{ undefined_x|d }}|",
     "dflt||d3|None||"},
    {"{{ \"42\"|int + 1 }} {{ \"4.7\"|int }} {{ \"x\"|int }} {{ \"x\"|int(7) }} {{ 3.9|int }} {{ \"0x1f\"|int(base=16) }} {{ \"1.5\"|float }} {{ \"x\"|float }} {{ 3|float }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.4|round(method=\"ceil\") }} {{ -3|abs }}",
     "43 4 0 7 3 31 1.5 0.0 3.0 2.57 2.0 4.0 3.0 3"},
    {"{{ s|replace(\"o\", \"0\") }}|{{ s|lower }}|{{ s|upper }}|{{ \"hello world\"|title }}|{{ \"HELLO\"|capitalize }}|{{ s|center(15) }}|{{ s|wordcount }}|{{ s|reverse }}|{{ l|reverse|list }}|{{ \"x\"|list }}",
     "Hell0 W0rld|hello world|HELLO WORLD|Hello World|Hello|  Hello World  |2|dlroW olleH|[2, 1, 3]|['x']"},
    {"{{ d|items|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get(\"a\") }}|{{ d.get(\"zz\", \"dflt\") }}|{{ d.get(\"zz\") }}|{{ d[\"items\"] }}|{{ d.items is defined }}|{{ d.pop is defined }}",
     "[('b', 2), ('a', 1), ('items', 'x')]|['b', 'a', 'items']|[2, 1, 'x']|1|dflt|None|x|True|False"},
    {"{{ t is true }}{{ n is none }}{{ n is not none }}{{ s is string }}{{ l is iterable }}{{ d is mapping }}{{ i is number }}{{ i is integer }}{{ f is float }}{{ l is sequence }}{{ undefined_x is defined }}{{ undefined_x is undefined }}{{ i is odd }}{{ i is even }}{{ i is divisibleby 7 }}{{ i is divisibleby(6) }}{{ s is lower }}{{ \"abc\" is lower }}{{ 3 is in [1,2,3] }}{{ 3 is eq 3 }}{{ 2 is lt 3 }}{{ 2 is gt 3 }}",
     "TrueTrueFalseTrueTrueTrueTrueTrueTrueTrueFalseTrueFalseTrueTrueTrueFalseTrueTrueTrueTrueFalse"},
    {"{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 1 == 1.0 }}{{ \"a\" in \"cat\" }}{{ \"z\" not in \"cat\" }}{{ 1 in l }}{{ \"a\" in d }}{{ [1,2] == [1,2] }}{{ (1,2) == [1,2] }}{{ none == none }}{{ undefined_a == undefined_b }}",
     "TrueFalseTrueTrueTrueTrueTrueTrueFalseTrueTrue"},
    {"{{ not t }}{{ not n }}{{ t and \"yes\" }}{{ n or \"fallback\" }}{{ 0 or \"\" or \"last\" }}{{ \"\" and \"x\" }}|{{ -i }}{{ +f }}{{ -(-3) }}",
     "FalseTrueyesfallbacklast|-422.53"},
    {"{{ \"%s is %d years and %.2f%%\" % (\"Bob\", 42, 3.14159) }}|{{ \"%5s|%-5s|%05d|%x|%X|%o|%e|%r\" % (\"a\", \"b\", 42, 255, 255, 8, 12345.678, \"q\") }}|{{ \"%(a)s-%(b)s\" % {\"a\": 1, \"b\": 2} }}|{{ \"%s\" % none }}|{{ \"%s\"|format(5) }}|{{ \"%s, %s\"|format(\"a\", \"b\") }}",
     "Bob is 42 years and 3.14%|    a|b    |00042|ff|FF|10|1.234568e+04|'q'|1-2|None|5|a, b"},
    {"{{ \"{} {}\".format(1, \"a\") }}|{{ \"{0}{1}{0}\".format(\"x\", \"y\") }}|{{ \"{name}!\".format(name=\"N\") }}|{{ \"{:>5}|{:<5}|{:^5}|{:05d}|{:.3f}|{:x}|{:,}\".format(\"a\", \"b\", \"c\", 42, 3.14159, 255, 1234567) }}|{{ \"{!r}\".format(\"s\") }}|{{ \"{{}}\".format() }}",
     "1 a|xyx|N!|    a|b    |  c  |00042|3.142|ff|1,234,567|'s'|{}"},
    {"{{ [1, \"a\", none, true, 1.5, (1,), (1, 2), {\"k\": [1]}, \"it's\", 'say \"hi\"', \"both ' \\\"\"] }}",
     "[1, 'a', None, True, 1.5, (1,), (1, 2), {'k': [1]}, \"it's\", 'say \"hi\"', 'both \\' \"']"},
    {"{{ \"a\\tb\\x01\\u00e9\\u2028\\xa0\" ~ \"\" }}|{{ [\"a\\tb\\x01\\u00e9\\u2028\\xa0 \\\\\"] }}",
     "a\tb\001\303\251\342\200\250\302\240|['a\\tb\\x01\303\251\\u2028\\xa0 \\\\']"},
    {"{%- for m in messages -%}\n  {{- m.role }}: {{ m.content if m.content is string else m.tool_calls|tojson }}\n{% endfor %}",
     "system: Be brief.\nuser: Hi <there> & 'you' \"q\"\nassistant: [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1, 2.5, null, true]}}}]\ntool: {\"r\": 1}\nuser:   \303\234n\303\257c\303\266d\303\251 \344\275\240\345\245\275 \360\237\221\215\360\237\217\275  \n"},
    {"  {% if t %}\n    yes\n  {% endif %}\n  {%+ if t %}plus{% endif %}\n    {%- if t %} minus {% endif -%}\n  {# comment #}\n  x {{ s }}  \n  {{- s -}}   \n end",
     "    yes\n  plus minus   x Hello WorldHello Worldend"},
    {"{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  spaced  {%- endraw -%}  |",
     "{{ not rendered }}|spaced|"},
    {"{% set block %}captured {{ s }}{% endset %}[{{ block }}]{% set b2 | upper %}lower text{% endset %}[{{ b2 }}]",
     "[captured Hello World][LOWER TEXT]"},
    {"{% filter upper %}hello {{ s }}{% endfilter %}|{% filter trim|replace(\"a\", \"b\") %}  aaa  {% endfilter %}",
     "HELLO HELLO WORLD|bbb"},
    {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}",
     "3"},
    {"{{ range(5)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(3) }} {{ range(0) | length }} {{ dict(a=1, b=2) }} {{ dict([[\"x\", 1]]) }}",
     "[0, 1, 2, 3, 4] [1, 4, 7] [5, 3, 1] range(0, 3) 0 {'a': 1, 'b': 2} {'x': 1}"},
    {"{% set c = cycler(\"a\", \"b\") %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}|{% set j = joiner(\"+\") %}{% for x in l %}{{ j() }}{{ x }}{% endfor %}|{% for x in l %}{{ loop.cycle(\"o\", \"e\") }}{% endfor %}",
     "abab|3+1+2|oeo"},
    {"{{ l|batch(2)|list }} {{ l|slice(2)|list }} {{ [1,2,3,4,5]|batch(2, \"x\")|list }} {{ [1,2,3,4]|slice(3)|list }}",
     "[[3, 1], [2]] [[3, 1], [2]] [[1, 2], [3, 4], [5, 'x']] [[1, 2], [3], [4]]"},
    {"{{ messages[0]['role'] }} {{ messages[0].role }} {{ messages[-1].content|trim }} {{ messages|length }} {{ messages[2].tool_calls[0].function.arguments }} {{ nested.x.y[2].z }} {{ nested[\"x\"][\"y\"][0] }}",
     "system system \303\234n\303\257c\303\266d\303\251 \344\275\240\345\245\275 \360\237\221\215\360\237\217\275 5 {'a': 1, 'b': [1, 2.5, None, True]} deep 10"},
    {"{{ \"abc\".upper is defined }}{{ n.split is defined }}{{ (n.split) }}{{ s.nonexistent }}{{ l.append is defined }}",
     "TrueFalseFalse"},
    {"{{ s ~ \": \" ~ (s|length) }}|{{ 'a' + s | lower + 'b' }}|{{ l|length - 1 }}|{{ not undefined_z is defined }}|{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}",
     "Hello World: 11|ahello worldb|2|True|4|64"},
    {"{{ \"Hello\"|safe + \"<b>\" }}|{{ \"<b>\" + \"x\"|safe }}|{{ (\"<\"|safe) ~ \"<\" }}|{{ \"<a>&\"|e }}|{{ \"<a>\"|escape|safe }}|{{ \"<p>hi</p>  there\"|striptags }}",
     "Hello&lt;b&gt;|&lt;b&gt;x|<<|&lt;a&gt;&amp;|&lt;a&gt;|hi there"},
    {"{{ \"abc\"|truncate(2, end=\"\") }}|{{ \"hello world foo bar baz\"|truncate(9) }}|{{ \"hello world foo bar baz\"|truncate(9, true) }}|{{ \"hello world foo bar baz\"|truncate(9, leeway=0) }}",
     "abc|hello...|hello ...|hello..."},
    {"{{ l|join }}|{{ l|join(\"-\") }}|{{ messages|join(\", \", attribute=\"role\") }}|{{ words|max }}|{{ words|min(case_sensitive=true) }}|{{ messages|map(attribute=\"name\", default=\"anon\")|list }}",
     "312|3-1-2|system, user, assistant, tool, user|c|A|['anon', 'anon', 'anon', 'anon', 'anon']"},
    {"{{ messages|selectattr(\"content\", \"string\")|map(attribute=\"role\")|list }}|{{ messages|selectattr(\"tool_calls\", \"defined\")|list|length }}|{{ l|map(\"string\")|list }}|{{ l|map(\"int\")|sum }}",
     "['system', 'user', 'tool', 'user']|1|['3', '1', '2']|6"},
    {"{{ \"a-b-c\".partition(\"-\") }}{{ \"a-b-c\".rpartition(\"-\") }}{{ \"abc\".removeprefix(\"a\") }}{{ \"abc\".removesuffix(\"c\") }}{{ \"42\".isdigit() }}{{ \"ab\".isalpha() }}{{ \"  \".isspace() }}{{ \"Ab\".istitle() }}{{ \"ab\".zfill(5) }}{{ \"-4\".zfill(4) }}{{ \"ab\".ljust(4, \"*\") }}{{ \"ab\".rjust(4) }}{{ \"ab\".center(5, \"-\") }}",
     "('a', '-', 'b-c')('a-b', '-', 'c')bcabTrueTrueTrueTrue000ab-004ab**  ab--ab-"},
    {"{{ \",\".join([\"a\", \"b\"]) }}{{ \"x\".join(\"abc\") }}{{ l.index(2) }}{{ l.count(1) }}{{ (1,2,1).count(1) }}",
     "a,baxbxc212"},
    {"{{ i > 40 and i < 50 }}{{ i >= 42 }}{{ i <= 41 }}{{ i != 42 }}{{ \"b\" > \"a\" }}{{ [1, 2] < [1, 3] }}{{ none is none }}",
     "TrueTrueFalseFalseTrueTrueTrue"},
    {"{%- if messages[0].role == 'system' -%}{%- set sys = messages[0].content -%}{%- set rest = messages[1:] -%}{%- else -%}{%- set rest = messages -%}{%- endif -%}{{ sys }}|{{ rest|length }}",
     "Be brief.|4"},
    {"{{ l|list is sequence }}{{ (l|select) is sequence }}{{ (l|select) is iterable }}{{ d.items() }}{{ d.keys() }}{{ d.values()|list }}{{ d.items()|length }}",
     "TrueFalseTruedict_items([('b', 2), ('a', 1), ('items', 'x')])dict_keys(['b', 'a', 'items'])[2, 1, 'x']3"},
    {"{{ \"%.3e\" % 12345.6789 }}|{{ \"%g\" % 0.00001234 }}|{{ \"%10.4f|\" % 3.14159 }}|{{ \"%-10d|\" % 5 }}|{{ \"%+d\" % 5 }}|{{ \"%c\" % 65 }}|{{ \"%i\" % 3.7 }}",
     "1.235e+04|1.234e-05|    3.1416||5         ||+5|A|3"},
    {"{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}|{% for (a, b) in [(1, 2)] %}{{ a }}-{{ b }}{% endfor %}|{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set q = 1, 2 %}{{ q }}",
     "1234|1-2|12|(1, 2)"},
    {"{% for item in nested.x.y recursive %}{% if item is mapping %}[{{ item.z }}]{% else %}{{ item }}({{ loop.depth }}){% endif %}{% endfor %}|{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}<{{ loop(x) }}>{% else %}{{ x }}@{{ loop.depth }}{% endif %}{% endfor %}",
     "10(1)20(1)[deep]|<1@2<2@3>>3@1"},
    {"{% for x in l %}{{ loop.changed(x > 1) }}{% endfor %}",
     "TrueTrueTrue"},
    {"{% if messages is not none %}a{% elif t %}b{% else %}c{% endif %}{% if n %}1{% elif e %}2{% elif i %}3{% endif %}",
     "a3"},
    {"{{ messages[0] }}",
     "{'role': 'system', 'content': 'Be brief.'}"},
    {"{{ tools }}",
     "[{'type': 'function', 'function': {'name': 'f', 'description': 'd', 'parameters': {'type': 'object', 'properties': {'a': {'type': 'integer'}}}}}]"},
    {"{% set x = {\"a\": [1, {\"b\": \"c\"}], \"d\": (1, \"x\")} %}{{ x }}|{{ x|tojson }}|{{ x.a[1].b }}",
     "{'a': [1, {'b': 'c'}], 'd': (1, 'x')}|{\"a\": [1, {\"b\": \"c\"}], \"d\": [1, \"x\"]}|c"},
    {"{{ 'it''s' \"x\" }}|{{ \"\\x41\\u00e9\\101\\'\" }}|{{ 'tab\\there' }}|{{ \"new\nline\" }}",
     "itsx|A\303\251A'|tab\there|new\nline"},
    {"{{ undefined_x.attr }}",
     NULL},
    {"{{ undefined_x + \"a\" }}",
     NULL},
    {"{{ n + \"a\" }}",
     NULL},
    {"{{ \"a\" + 1 }}",
     NULL},
    {"{{ 1 + \"a\" }}",
     NULL},
    {"{% for x in n %}{% endfor %}",
     NULL},
    {"{{ \"a\" in n }}",
     NULL},
    {"{{ n.split(\"x\") }}",
     NULL},
    {"{{ raise_exception(\"boom \" ~ i) }}",
     NULL},
    {"{{ undefined_x|tojson }}",
     NULL},
    {"{{ l|select|tojson }}",
     NULL},
    {"{{ (l|select)|length }}",
     NULL},
    {"{{ 1 / 0 }}",
     NULL},
    {"{{ 1 // 0 }}",
     NULL},
    {"{{ [1] < [\"a\"] }}",
     NULL},
    {"{{ 1 < \"a\" }}",
     NULL},
    {"{{ l.append(1) }}",
     NULL},
    {"{{ d.update({}) }}",
     NULL},
    {"{{ foo() }}",
     NULL},
    {"{{ s() }}",
     NULL},
    {"{% set x.y = 1 %}",
     NULL},
    {"{% set ns = namespace() %}{% set ns.a.b = 1 %}",
     NULL},
    {"{{ range(100001) }}",
     NULL},
    {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
     NULL},
    {"{% macro m(a) %}{% endmacro %}{{ m(b=2) }}",
     NULL},
    {"{{ d.missing.deeper }}",
     NULL},
    {"{{ messages[10].role }}",
     NULL},
    {"{{ -s }}",
     NULL},
    {"{{ \"%d\" % \"x\" }}",
     NULL},
    {"{{ \"%s %s\" % (\"a\",) }}",
     NULL},
    {"{{ \"%s\" % (\"a\", \"b\") }}",
     NULL},
    {"{{ \"{0}\".format() }}",
     NULL},
    {"{{ x is nosuchtest }}",
     NULL},
    {"{{ x|nosuchfilter }}",
     NULL},
    {"{% if false %}{{ x|nosuchfilter }}{% endif %}ok",
     "ok"},
    {"{% if true %}{{ x|nosuchfilter }}{% endif %}ok",
     NULL},
    {"{% generation %}x{% endgeneration %}",
     NULL},
    {"{% include \"x\" %}",
     NULL},
    {"{{ 1 +",
     NULL},
    {"{% for %}",
     NULL},
    {"{% if x %}",
     NULL},
    {"{% endif %}",
     NULL},
    {"{{ (1 }}",
     NULL},
    {"{{ 'unterminated }}",
     NULL},
    {"{# unterminated",
     NULL},
    {"{% set %}",
     NULL},
    {"{% break %}",
     NULL},
    {"{{ }}",
     NULL},
    {"{{ 1 2 }}",
     NULL},
    {"{{ x is not is }}",
     NULL},
    {"a\n {%- if t %}\n  b\n {%- endif %}\nc",
     "a  bc"},
    {"a\n  {% for x in l %}\n  - {{ x }}\n  {% endfor %}\nb",
     "a\n  - 3\n  - 1\n  - 2\nb"},
    {"{% for x in l -%}\n  {{ x }}\n{%- endfor %}",
     "312"},
    {"  {# c #}  x\n    {%- set z = 1 -%}\n  y  {{- z }}  ",
     "  xy1  "},
    {"{% if t %}\nyes\n{%- else %}\nno\n{% endif %}\ntrail",
     "yestrail"},
    {"  {{ s }}\n    {% if t %}in{% endif %}\n\t{% if t %}tab{% endif %}\n{% if t %}   {% endif %}",
     "  Hello World\nintab   "},
    {"{%- macro m() -%}\n  body\n{%- endmacro -%}\n[{{ m() }}]",
     "[body]"},
    {"x {%+ if t %}a{% endif +%}\ny",
     "x a\ny"},
    {"x{%- if t -%}   \n\na   {%- endif -%}\n   y",
     "xay"},
    {"\t  {% set a = 1 %}\n\t  line {{ a }}",
     "\t  line 1"},
    {"{{ \"x\" }}\n{% if t %}\n  {{ \"y\" }}\n{% endif %}\n{{ \"z\" }}",
     "x\n  y\nz"},
    {"{% set g = \"global\" %}{% macro m() %}{{ g }}|{{ s }}|{{ loop }}{% endmacro %}{% for x in [1] %}{{ m() }}{% endfor %}",
     "global|Hello World|"},
    {"{% macro m() %}{% set g = \"inner\" %}{{ g }}{% endmacro %}{% set g = \"outer\" %}{{ m() }}{{ g }}",
     "innerouter"},
    {"{% set ns = namespace(v=1) %}{% macro m() %}{% set ns.v = ns.v + 1 %}{% endmacro %}{{ m() }}{{ m() }}{{ ns.v }}",
     "3"},
    {"{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}",
     "113 214 1|123 224 2|"},
    {"{% for x in l %}{% if loop.first %}F{% endif %}{% if x > 1 %}{% set big = true %}{% endif %}{{ big }}{% endfor %}",
     "FTrue1234567True"},
    {"{% set messages = messages[1:] %}{{ messages|length }}{% for m in messages %}{{ loop.index }}{% endfor %}",
     "41234"},
    {"{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ add_generation_prompt }}",
     "False"},
    {"{%- for message in messages %}\n    {%- if message.role == \"user\" %}\n        {{- '<|user|>' + message.content|trim }}\n    {%- elif message.role == \"assistant\" and message.tool_calls is defined %}\n        {%- for tc in message.tool_calls %}\n            {{- tc.function.name }}({{ tc.function.arguments|tojson }})\n        {%- endfor %}\n    {%- endif %}\n{%- endfor %}",
     "<|user|>Hi <there> & 'you' \"q\"f({\"a\": 1, \"b\": [1, 2.5, null, true]})<|user|>\303\234n\303\257c\303\266d\303\251 \344\275\240\345\245\275 \360\237\221\215\360\237\217\275"},
    {"{{ messages|selectattr(\"role\", \"in\", [\"user\", \"system\"])|map(attribute=\"content\")|map(\"trim\")|join(\"|\") }}",
     "Be brief.|Hi <there> & 'you' \"q\"|\303\234n\303\257c\303\266d\303\251 \344\275\240\345\245\275 \360\237\221\215\360\237\217\275"},
    {"{{ messages|map(attribute=\"role\")|unique|list }}|{{ [\"a\", \"A\", \"b\"]|unique|list }}|{{ [\"a\", \"A\", \"b\"]|unique(case_sensitive=true)|list }}",
     "['system', 'user', 'assistant', 'tool']|['a', 'b']|['a', 'A', 'b']"},
    {"{% for g in messages|groupby(\"role\") %}{{ g.grouper }}={{ g.list|length }};{% endfor %}|{{ messages|groupby(\"role\")|map(attribute=\"grouper\")|list }}|{% for k, items in [{\"a\": \"X\"}, {\"a\": \"x\"}, {\"a\": \"y\"}]|groupby(\"a\") %}{{ k }}{{ items|length }}{% endfor %}",
     "assistant=1;system=1;tool=1;user=2;|['assistant', 'system', 'tool', 'user']|X2y1"},
    {"{{ l|sort|first }} {{ (l|sort)[-1] }} {{ l|sort|join }} {{ [3, 1, 2]|sort(reverse=true)|list }} {{ messages|sort(attribute=\"role\")|map(attribute=\"role\")|join(\",\") }}",
     "1 3 123 [3, 2, 1] assistant,system,tool,user,user"},
    {"{{ {\"b\": 1, \"a\": 2}|dictsort(by=\"value\") }} {{ {\"b\": 1, \"A\": 2, \"a\": 3}|dictsort }} {{ {\"b\": 1, \"a\": 2}|dictsort(reverse=true) }}",
     "[('b', 1), ('a', 2)] [('A', 2), ('a', 3), ('b', 1)] [('b', 1), ('a', 2)]"},
    {"{{ \"x\" if none else \"y\" }} {{ [\"a\"] if [] else [\"b\"] }} {{ 1 if 0 else 2 if 0 else 3 }}",
     "y ['b'] 3"},
    {"{% set x = [] %}{% if x %}t{% else %}f{% endif %}{% if {} %}t{% else %}f{% endif %}{% if 0.0 %}t{% else %}f{% endif %}{% if \"0\" %}t{% else %}f{% endif %}{% if range(0) %}t{% else %}f{% endif %}{% if l|select %}t{% else %}f{% endif %}",
     "ffftft"},
    {"{{ l[0:2] }}{{ l[-2:] }}{{ l[::2] }}{{ l[5:] }}{{ l[-100:100] }}{{ \"abcdef\"[1:-1:2] }}{{ \"abc\"[::-2] }}{{ l[1::-1] }}",
     "[3, 1][1, 2][3, 2][][3, 1, 2]bdca[1, 3]"},
    {"{{ d.a }}{{ d[\"a\"] }}{{ d.get(\"a\") }}{{ d|length }}{{ \"a\" in d }}{{ 1 in d.values() }}{{ (\"a\", 1) in d.items() }}",
     "1113TrueTrueTrue"},
    {"{% for k, v in {\"x\": [1, 2], \"y\": {\"z\": 3}}.items() %}{{ k }}:{{ v|tojson }};{% endfor %}",
     "x:[1, 2];y:{\"z\": 3};"},
    {"{{ messages[2].tool_calls[0].function.arguments|tojson(indent=4) }}",
     "{\n    \"a\": 1,\n    \"b\": [\n        1,\n        2.5,\n        null,\n        true\n    ]\n}"},
    {"{{ {\"a\": {\"b\": [1, {\"c\": []}], \"d\": {}}}|tojson(indent=2) }}|{{ [[], {}]|tojson(indent=1) }}|{{ \"x\"|tojson(indent=2) }}|{{ {\"a\": 1}|tojson(separators=(\",\", \":\")) }}",
     "{\n  \"a\": {\n    \"b\": [\n      1,\n      {\n        \"c\": []\n      }\n    ],\n    \"d\": {}\n  }\n}|[\n [],\n {}\n]|\"x\"|{\"a\":1}"},
    {"{{ [1.5, 2.0, 1e20, 1e-7, -0.5, 100.0] }}|{{ [1.5, 2.0, 1e20, 1e-7, -0.5, 100.0]|tojson }}|{{ 1e22 }}|{{ 12345678901234567.0 }}|{{ 0.000123 }}",
     "[1.5, 2.0, 1e+20, 1e-07, -0.5, 100.0]|[1.5, 2.0, 1e+20, 1e-07, -0.5, 100.0]|1e+22|1.2345678901234568e+16|0.000123"},
    {"{{ \"\303\234n\303\257c\303\266d\303\251 \303\200\303\211\303\216 \303\237tra\303\237e \307\205 \316\243\316\257\317\203\317\205\317\206\316\277\317\202 \320\237\321\200\320\270\320\262\320\265\321\202\"|upper }}|{{ \"\303\234n\303\257c\303\266d\303\251 \303\200\303\211\303\216 \320\237\321\200\320\270\320\262\320\265\321\202\"|lower }}|{{ \"\303\251lan vital \303\261and\303\272\"|title }}",
     "\303\234N\303\217C\303\226D\303\211 \303\200\303\211\303\216 SSTRASSE \307\204 \316\243\316\212\316\243\316\245\316\246\316\237\316\243 \320\237\320\240\320\230\320\222\320\225\320\242|\303\274n\303\257c\303\266d\303\251 \303\240\303\251\303\256 \320\277\321\200\320\270\320\262\320\265\321\202|\303\211lan Vital \303\221and\303\272"},
    {"{{ \"\\u00a0x\\u2003\"|trim }}|{{ \"a\\u2028b\".splitlines() }}|{{ \"a\\u00a0b\".split() }}|{{ \"x\\u3000\"|length }}",
     "x|['a', 'b']|['a', 'b']|2"},
    {"{{ \"%s\" % [1, 2] }}|{{ \"%s\" % ((1, 2),) }}|{{ \"%s-%s\" % (1, 2) }}|{{ \"%%\" % () }}|{{ \"%5.1f\" % 2.25 }}|{{ \"%.0f\" % 2.5 }}|{{ \"%.0f\" % 3.5 }}",
     "[1, 2]|(1, 2)|1-2|%|  2.2|2|4"},
    {"{{ \"{:10}|{:<10}|{:*^9}|{:+d}|{: d}|{:.2%}|{:e}|{:g}|{:08.3f}|{:#x}|{:#o}|{:b}\".format(\"s\", 3, \"m\", 5, 5, 0.256, 1234.5, 0.00001, -3.14159, 255, 8, 5) }}",
     "s         |3         |****m****|+5| 5|25.60%|1.234500e+03|1e-05|-003.142|0xff|0o10|101"},
    {"{{ \"{0[0]} {0[1]} {1.a}\".format([\"x\", \"y\"], d) }}|{{ \"{:.2}\".format(\"abcdef\") }}|{{ \"{}\".format(none) }}|{{ \"{}\".format(1.0) }}|{{ \"{:.3}\".format(3.14159) }}",
     "x y 1|ab|None|1.0|3.14"},
    {"{% for x in l %}{{ loop.revindex }}{% if not loop.last %},{% endif %}{% endfor %}|{% for x in l|reverse %}{{ x }}{% endfor %}|{{ l|reverse|join(\",\") }}",
     "3,2,1|213|2,1,3"},
    {"{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
     "10 20 21 "},
    {"{%- set tools_str = tools|map(attribute=\"function\")|map(attribute=\"name\")|join(\",\") -%}[{{ tools_str }}]",
     "[f]"},
    {"{{ tools[0].function.parameters.properties.a.type }}{{ tools[0][\"function\"][\"name\"] }}{{ tools[0].function.parameters.properties|items|list }}",
     "integerf[('a', {'type': 'integer'})]"},
    {"{{ messages[1].content|e }}|{{ messages[1].content|length }}|{{ messages[4].content|wordcount }}",
     "Hi &lt;there&gt; &amp; &#39;you&#39; &#34;q&#34;|22|2"},
    {"{% set x %}\n  line1\n  {% if t %}line2{% endif %}\n{% endset %}[{{ x }}]",
     "[  line1\nline2]"},
    {"{{ 9223372036854775807 }}{{ -9223372036854775807 - 1 }}{{ 2 ** 63 - 1 if false else \"ok\" }}",
     "9223372036854775807-9223372036854775808ok"},
    {"{{ 10 ** 3 }} {{ 10 ** 0 }} {{ 0 ** 0 }} {{ 2.0 ** 0.5 }} {{ (-8) ** 2 }} {{ 7 % 2.5 }}",
     "1000 1 1 1.4142135623730951 64 2.0"},
    {"{{ true + 1 }}{{ true * 3 }}{{ 1 == true }}{{ [true] == [1] }}{{ {1: \"a\"}[true] }}{{ 0.5 + true }}",
     "23TrueTruea1.5"},
    {"{% macro m(x) -%}\n  [{{ x }}]\n{%- endmacro %}\n{{ m(1) }}\n{{- m(2) }}",
     "[1][2]"},
    {"{{ caller is defined }}{% macro m() %}{{ caller is defined }}{% endmacro %}{{ m() }}{% call m() %}{% endcall %}",
     "FalseFalseTrue"},
    {"{% for x in [1,2,3] %}{{ loop.cycle(*[\"a\", \"b\"]) if false else loop.cycle(\"a\", \"b\", \"c\") }}{% endfor %}",
     "abc"},
    {"{% set a = \"x\" %}{% with %}{% set a = \"y\" %}{{ a }}{% endwith %}{{ a }}{% with b = a ~ \"!\" %}{{ b }}{% endwith %}",
     "yxx!"},
    {"{{ 'single' }}{{ \"dou'ble\" }}{{ 'sing\"le' }}{{ [\"it's\"] }}{{ ['\"'] }}{{ [\"'\\\"\"] }}{{ [\"\\\\\"] }}",
     "singledou'blesing\"le[\"it's\"]['\"']['\\'\"']['\\\\']"},
    {"{{ messages | length > 2 }} {{ messages|length>2 and true }} {{ not messages|length }}",
     "True True False"},
    {"{{ (messages|last).content }}{{ (messages|first).role }}{{ messages[-1]['content'] | trim | length }}",
     "  \303\234n\303\257c\303\266d\303\251 \344\275\240\345\245\275 \360\237\221\215\360\237\217\275  system13"},
    {"{{ 1 is sameas 1 }}{{ none is sameas none }}{{ l is sameas l }}{{ [1] is sameas [1] }}{{ \"a\" is escaped }}{{ \"a\"|safe is escaped }}{{ \"upper\" is filter }}{{ \"nope\" is test }}{{ range is callable }}{{ d.items is callable }}",
     "TrueTrueTrueFalseFalseTrueTrueFalseTrueTrue"},
    {"{% for x in l %}{{ x }}{% if loop.last %}!{% endif %}{% else %}none{% endfor %}",
     "312!"},
    {"{{ d | items | map(\"first\") | list }} {{ d|list }} {{ d|first }} {{ d|length }} {{ \"abc\"|first }} {{ \"abc\"|last }}",
     "['b', 'a', 'items'] ['b', 'a', 'items'] b 3 a c"},
    {"{{ \"a.b.c\".split(\".\", maxsplit=1) }}{{ \"a  b\".split(\" \") }}{{ \"\".split() }}{{ \"\".split(\",\") }}{{ \"abc\".split(\"abc\") }}",
     "['a', 'b.c']['a', '', 'b'][]['']['', '']"},
    {"{{ [1, [2, [3, [4]]]]|tojson }} {{ {\"k\": (1, 2)}|tojson }} {{ {1: \"int key\", none: \"n\", true: \"b\", 2.5: \"f\"}|tojson }}",
     "[1, [2, [3, [4]]]] {\"k\": [1, 2]} {\"1\": \"b\", \"null\": \"n\", \"2.5\": \"f\"}"},
    {"{{ \"%s\" | format(\"x\") }} {{ \"%d items\" | format(3) }} {{ \"%(n)s\"|format(n=5) }}",
     "x 3 items 5"},
    {"{{ l|sum(start=10) }} {{ [[1], [2]]|sum(start=[]) }} {{ [0.1, 0.2]|sum }} {{ messages|sum(attribute=\"x\") if false else 0 }}",
     "16 [1, 2] 0.30000000000000004 0"},
    {"{{ \"AbC\"|lower == \"abc\" }} {{ \"ABC\" is upper }} {{ \"aBc\" is lower }} {{ \"123\" is lower }}",
     "True True False False"},
    {"{% set lst = [1, 2, 3] %}{% for x in lst %}{% set lst = [9] %}{{ x }}{% endfor %}{{ lst }}",
     "123[1, 2, 3]"},
    {"{{ (l|select(\"gt\", 1)|list) }} {{ l|select(\"lessthan\", 3)|list }} {{ l|select(\"in\", [1, 3])|list }} {{ l|select(\"==\", 1)|list }} {{ [\"a\", none, \"\"]|select|list }} {{ [\"a\", none, \"\"]|select(\"none\")|list }}",
     "[3, 2] [1, 2] [3, 1] [1] ['a'] [None]"},
    {"{{ l|batch(2)|list }} {{ l|slice(2)|list }} {{ [1,2,3,4,5]|batch(2, \"x\")|list }} {{ [1,2,3,4]|slice(3)|list }} {{ [1,2,3,4]|slice(3, 0)|list }} {{ [1,2,3]|batch(0)|list }} {{ [1,2,3]|batch(-1)|list }} {{ []|batch(2)|list }} {{ [1,2,3,4,5,6]|slice(3, \"f\")|list }}",
     "[[3, 1], [2]] [[3, 1], [2]] [[1, 2], [3, 4], [5, 'x']] [[1, 2], [3], [4]] [[1, 2], [3, 0], [4, 0]] [[], [1, 2, 3]] [[1, 2, 3]] [] [[1, 2, 'f'], [3, 4, 'f'], [5, 6, 'f']]"},
    {"{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4, a2=5) }}",
     "1|(2, 3)|{'x': 4, 'a2': 5}"},
    {"{% macro m(a) %}{{ a }}|{{ varargs }}{% endmacro %}{{ m(1, 2, 3) }}",
     "1|(2, 3)"},
    {"{% macro m(a) %}{{ a }}|{{ kwargs }}{% endmacro %}{{ m(1, b=2) }}|{{ m(a=3) }}",
     "1|{'b': 2}|3|{}"},
    {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, b=2) }}",
     NULL},
    {"{% macro outer() %}{% macro inner() %}{{ varargs }}{% endmacro %}{{ inner(1) }}{% endmacro %}{{ outer() }}",
     "(1,)"},
    {"{% macro m() %}{{ varargs|length }}{% endmacro %}{{ m() }}{{ m(*[1, 2]) }}{{ m(*l) }}",
     "023"},
    {"{% macro m(a, b) %}{{ a }}-{{ b }}{% endmacro %}{{ m(**{\"a\": 1, \"b\": 2}) }}{{ m(*[3], **{\"b\": 4}) }}",
     "1-23-4"},
    {"{{ \"%s-%s\"|format(*l[:2]) }}{{ dict(**d) }}{{ \",\".join(*[[\"a\",\"b\"]]) }}",
     "3-1{'b': 2, 'a': 1, 'items': 'x'}a,b"},
    {"{{ range(4)[:-1] }}|{{ range(4)[::-1] }}|{{ range(10)[2:8:3] }}|{{ range(1, 10, 2)[1:] }}|{{ range(4)[1:]|list }}",
     "range(0, 3)|range(3, -1, -1)|range(2, 8, 3)|range(3, 11, 2)|[1, 2, 3]"},
    {"{{ [25|round(-1), 15|round(-1), 7|round(2), 2.5|round, 2.675|round(2), i|round(-1)] }}",
     "[20, 20, 7, 2.0, 2.67, 40]"},
    {"{% set ns = namespace(out=[]) %}{% for k, v in nested.x|dictsort %}{% set ns.out = ns.out + [k ~ \"=\" ~ v|length] %}{% endfor %}{{ ns.out|join(\";\") }}",
     "y=3"},
    {"{%- for tool in tools %}\n  {%- set fn = tool.function if tool.function is defined else tool %}\n  {{- fn.name }}({% for p, spec in fn.parameters.properties|items %}{{ p }}: {{ spec.type }}{{ \", \" if not loop.last }}{% endfor %})\n{%- endfor %}",
     "f(a: integer)"},
    {"{{ \"%s\" % l }}|{{ \"x\" % l }}|{{ \"%(a)s\" % d }}",
     "[3, 1, 2]|x|1"},
    {"{{ (words|groupby(\"upper\") if false) is defined }}|{% for g in [{\"t\": \"a\", \"v\": 1}, {\"t\": \"b\", \"v\": 2}, {\"t\": \"a\", \"v\": 3}]|groupby(\"t\") %}{{ g.grouper }}:{{ g.list|map(attribute=\"v\")|join(\",\") }} {% endfor %}",
     "False|a:1,3 b:2 "},
};

static cJSON *ctx;

/* 2026-11-22T00:00:00 UTC, the reference suite's fixed "now". */
static int64_t fixed_now(void)
{
    struct tm tm = {0};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 22;
    return (int64_t)timegm(&tm);
}

/* Parse and render src with the table's context; lim NULL = defaults. */
static enum shoal_err render_with(const char *src, const struct engine_chat *chat,
                                  const struct jinja_limits *lim, struct shoal_buf *out,
                                  struct shoal_diag *d)
{
    struct engine_template *t = NULL;
    shoal_diag_clear(d);
    enum shoal_err rc = engine_template_parse(src, strlen(src), &t, d);
    if (rc != SHOAL_OK)
        return rc;
    if (lim) {
        struct jinja_opts o = {.lim = *lim, .now = (time_t)fixed_now(), .utc = true};
        rc = engine_template_render_opts(t, chat, &o, out, d);
    } else {
        rc = engine_template_render_at(t, chat, fixed_now(), true, out, d);
    }
    engine_template_free(t);
    return rc;
}

static struct engine_chat table_chat(void)
{
    struct engine_chat chat = {
        .messages = cJSON_GetObjectItemCaseSensitive(ctx, "messages"),
        .tools = cJSON_GetObjectItemCaseSensitive(ctx, "tools"),
        .extra = cJSON_GetObjectItemCaseSensitive(ctx, "extra"),
        .add_generation_prompt = false,
        .bos_token = "",
        .eos_token = "",
    };
    return chat;
}

static enum shoal_err render(const char *src, struct shoal_buf *out, struct shoal_diag *d)
{
    struct engine_chat chat = table_chat();
    return render_with(src, &chat, NULL, out, d);
}

static void test_table(void)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(rows); i++) {
        struct shoal_buf out;
        struct shoal_diag d;
        shoal_buf_init(&out, 1u << 20);
        enum shoal_err rc = render(rows[i].src, &out, &d);
        if (rows[i].want) {
            bool ok = rc == SHOAL_OK && out.len == strlen(rows[i].want) &&
                      memcmp(shoal_buf_cstr(&out), rows[i].want, out.len) == 0;
            if (!ok)
                fprintf(stderr, "row %zu: %s\n  rc=%s %u:%u %s\n  got:  \"%s\"\n  want: \"%s\"\n", i,
                        rows[i].src, shoal_err_name(rc), d.line, d.col, d.msg,
                        shoal_buf_cstr(&out), rows[i].want);
            CHECK(ok);
        } else {
            if (rc == SHOAL_OK || d.line == 0)
                fprintf(stderr, "row %zu: %s\n  expected an error with a location, got %s %u:%u %s\n",
                        i, rows[i].src, shoal_err_name(rc), d.line, d.col, d.msg);
            CHECK(rc != SHOAL_OK);
            CHECK(d.line > 0);
        }
        shoal_buf_fini(&out);
    }
}

/* Errors: where they are reported and what they say. */
static void test_errors(void)
{
    static const struct {
        const char *src;
        enum shoal_err rc;
        unsigned line, col;
        const char *msg;
    } cases[] = {
        {"{{ x.y }}", SHOAL_ERR_INVALID, 1, 5, "'x' is undefined"},
        {"a\n{% for m in messages %}{{ m.content + 1 }}{% endfor %}", SHOAL_ERR_INVALID, 2, 37,
         "can only concatenate str (not \"int\") to str"},
        {"\n\n  {{ raise_exception(\"custom failure \" ~ 7) }}", SHOAL_ERR_INVALID, 3, 6,
         "custom failure 7"},
        {"line1\n  {{ nope( }}", SHOAL_ERR_INVALID, 2, 12, "unexpected '}', expected ')'"},
        {"{% if true %}", SHOAL_ERR_INVALID, 1, 14, "Jinja was looking for the following tags"},
        {"{% set x = 1 %}\n{{ x|nosuch }}", SHOAL_ERR_INVALID, 2, 6, "No filter named 'nosuch'."},
        {"x\n  {{ 1 / 0 }}", SHOAL_ERR_INVALID, 2, 8, "division by zero"},
        {"{{ \"\303\251\" ~ q.a }}", SHOAL_ERR_INVALID, 1, 11, "'q' is undefined"},
        {"{% macro m() %}\n  {{ n.split(\",\") }}\n{% endmacro %}\n{{ m() }}", SHOAL_ERR_INVALID, 2,
         7, "'None' has no attribute 'split'"},
        {"{% generation %}x{% endgeneration %}", SHOAL_ERR_INVALID, 1, 4,
         "Encountered unknown tag 'generation'."},
        {"{% include 'x.jinja' %}", SHOAL_ERR_UNSUPPORTED, 1, 4, "tag 'include' is not supported"},
        {"{% endfor %}", SHOAL_ERR_INVALID, 1, 4, "Encountered unknown tag 'endfor'."},
        {"{{ 'open }}", SHOAL_ERR_INVALID, 1, 4, "unterminated string"},
        {"{# never closed", SHOAL_ERR_INVALID, 1, 1, "missing end of comment tag"},
        {"{% for x in l %}{% endfor %}{% break %}", SHOAL_ERR_INVALID, 1, 32, "outside of a loop"},
        {"{% for x in n %}{% endfor %}", SHOAL_ERR_INVALID, 1, 13,
         "'NoneType' object is not iterable"},
        {"{{ messages[2].content.split('x') }}", SHOAL_ERR_INVALID, 1, 23,
         "'None' has no attribute 'split'"},
        {"{{ 'a' in n }}", SHOAL_ERR_INVALID, 1, 4, "argument of type 'NoneType' is not iterable"},
        {"{{ tools|map(attribute='function')|tojson }}", SHOAL_ERR_INVALID, 1, 36,
         "Object of type generator is not JSON serializable"},
        {"{{ l.append(4) }}", SHOAL_ERR_INVALID, 1, 5, "is unsafe"},
        {"{{ 1 < 'a' }}", SHOAL_ERR_INVALID, 1, 4, "'<' not supported between instances"},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
        struct shoal_buf out;
        struct shoal_diag d;
        shoal_buf_init(&out, 1u << 20);
        enum shoal_err rc = render(cases[i].src, &out, &d);
        bool ok = rc == cases[i].rc && d.line == cases[i].line && d.col == cases[i].col &&
                  strstr(d.msg, cases[i].msg) != NULL;
        if (!ok)
            fprintf(stderr, "error case %zu: %s\n  got %s at %u:%u: %s\n", i, cases[i].src,
                    shoal_err_name(rc), d.line, d.col, d.msg);
        CHECK(ok);
        CHECK(out.len == 0); /* nothing is appended on failure */
        shoal_buf_fini(&out);
    }
}

/* raise_exception's message is the diagnostic, verbatim. */
static void test_raise_exception(void)
{
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    CHECK_EQ_INT(render("{{ raise_exception('Conversation roles must alternate "
                        "user/assistant/user/assistant/...') }}", &out, &d),
                 SHOAL_ERR_INVALID);
    CHECK_STR(d.msg, "Conversation roles must alternate user/assistant/user/assistant/...");
    shoal_buf_fini(&out);
}

/* Hostile templates fail with TOO_BIG, quickly, without crashing. */
static void test_caps(void)
{
    static const struct {
        const char *what;
        const char *src;
        enum shoal_err rc;
    } cases[] = {
        {"huge range", "{% for i in range(10**9) %}x{% endfor %}", SHOAL_ERR_TOO_BIG},
        {"nested loops",
         "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         SHOAL_ERR_TOO_BIG},
        {"macro recursion", "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
         SHOAL_ERR_TOO_BIG},
        {"recursive loop",
         "{% for x in [[1]] recursive %}{{ loop([[1]]) }}{% endfor %}", SHOAL_ERR_TOO_BIG},
        {"string multiplication", "{{ 'x' * 1000000000 }}", SHOAL_ERR_TOO_BIG},
        {"list multiplication", "{{ [1, 2] * 1000000000 }}", SHOAL_ERR_TOO_BIG},
        {"output", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", SHOAL_ERR_TOO_BIG},
        {"string doubling",
         "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}",
         SHOAL_ERR_TOO_BIG},
        {"nested values",
         "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
         "{% endfor %}",
         SHOAL_ERR_TOO_BIG},
        {"self-printing namespace", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
         SHOAL_ERR_TOO_BIG},
        {"integer overflow", "{{ 2 ** 64 }}", SHOAL_ERR_TOO_BIG},
        {"many list items",
         "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% for j in range(100) %}"
         "{% set ns.l = ns.l + [j] %}{% endfor %}{% endfor %}",
         SHOAL_ERR_TOO_BIG},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
        struct shoal_buf out;
        struct shoal_diag d;
        shoal_buf_init(&out, 64u << 20);
        uint64_t t0 = shoal_now_ms();
        enum shoal_err rc = render(cases[i].src, &out, &d);
        uint64_t ms = shoal_now_ms() - t0;
        if (rc != cases[i].rc || ms > 20000)
            fprintf(stderr, "cap %s: got %s (%s) after %llu ms\n", cases[i].what,
                    shoal_err_name(rc), d.msg, (unsigned long long)ms);
        CHECK_EQ_INT(rc, cases[i].rc);
        CHECK(ms <= 20000);
        shoal_buf_fini(&out);
    }

    /* the parser's own bounds */
    char *deep = malloc(20001);
    CHECK(deep != NULL);
    if (deep) {
        size_t o = 0;
        o += (size_t)snprintf(deep + o, 20001 - o, "{{ ");
        for (int k = 0; k < 5000; k++)
            deep[o++] = '(';
        deep[o] = 0;
        struct engine_template *t = NULL;
        struct shoal_diag d;
        CHECK_EQ_INT(engine_template_parse(deep, o, &t, &d), SHOAL_ERR_TOO_BIG);
        o = 0;
        for (int k = 0; k < 2000; k++)
            o += (size_t)snprintf(deep + o, 20001 - o, "{%% if 1 %%}");
        CHECK_EQ_INT(engine_template_parse(deep, o, &t, &d), SHOAL_ERR_TOO_BIG);
        o = (size_t)snprintf(deep, 20001, "{{ 1");
        while (o < 20000 - 3)
            o += (size_t)snprintf(deep + o, 20001 - o, "+1");
        snprintf(deep + o, 20001 - o, "}}");
        /* a long flat chain parses, but evaluating it nests too deeply */
        struct shoal_buf out;
        shoal_buf_init(&out, 1u << 20);
        CHECK_EQ_INT(render(deep, &out, &d), SHOAL_ERR_TOO_BIG);
        shoal_buf_fini(&out);
        free(deep);
    }

    /* explicit small caps through the internal options */
    struct jinja_limits lim;
    jinja_limits_default(&lim);
    lim.max_output = 10;
    struct engine_chat chat = table_chat();
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    CHECK_EQ_INT(render_with("{{ 'x' * 10 }}", &chat, &lim, &out, &d), SHOAL_OK);
    CHECK_EQ_INT(out.len, 10);
    shoal_buf_reset(&out);
    CHECK_EQ_INT(render_with("{{ 'x' * 11 }}", &chat, &lim, &out, &d), SHOAL_ERR_TOO_BIG);
    jinja_limits_default(&lim);
    lim.max_steps = 1000;
    CHECK_EQ_INT(render_with("{% for i in range(10000) %}{% endfor %}", &chat, &lim, &out, &d),
                 SHOAL_ERR_TOO_BIG);
    jinja_limits_default(&lim);
    lim.max_loop_iters = 10;
    CHECK_EQ_INT(render_with("{% for i in range(10) %}{% endfor %}", &chat, &lim, &out, &d),
                 SHOAL_OK);
    CHECK_EQ_INT(render_with("{% for i in range(11) %}{% endfor %}", &chat, &lim, &out, &d),
                 SHOAL_ERR_TOO_BIG);
    jinja_limits_default(&lim);
    lim.max_memory = 1u << 16;
    CHECK_EQ_INT(render_with("{{ messages|tojson * 1000 }}", &chat, &lim, &out, &d),
                 SHOAL_ERR_TOO_BIG);
    shoal_buf_fini(&out);

    /* the caller's buffer is a cap too */
    shoal_buf_init(&out, 4);
    CHECK_EQ_INT(render("{{ 'hello' }}", &out, &d), SHOAL_ERR_TOO_BIG);
    shoal_buf_fini(&out);
}

static void test_inputs(void)
{
    cJSON *msgs = cJSON_Parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
    cJSON *null = cJSON_CreateNull();
    cJSON *extra = cJSON_Parse("{\"bos_token\":\"<extra-bos>\",\"messages\":[],\"x\":1}");
    struct engine_chat chat = {.messages = msgs, .bos_token = "<s>", .eos_token = "</s>"};
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    const char *probe = "{{ tools is defined }}|{{ tools is none }}|{{ bos_token }}|{{ eos_token }}|"
                        "{{ messages|length }}|{{ add_generation_prompt }}|{{ x }}";
    /* tools absent: undefined */
    CHECK_EQ_INT(render_with(probe, &chat, NULL, &out, &d), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "False|False|<s>|</s>|1|False|");
    /* tools given as JSON null: defined and none; extra variables can
     * replace bos_token but not messages */
    shoal_buf_reset(&out);
    chat.tools = null;
    chat.extra = extra;
    chat.add_generation_prompt = true;
    CHECK_EQ_INT(render_with(probe, &chat, NULL, &out, &d), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "True|True|<extra-bos>|</s>|1|True|1");
    /* NULL bos/eos mean "" */
    shoal_buf_reset(&out);
    struct engine_chat bare = {.messages = msgs};
    CHECK_EQ_INT(render_with("[{{ bos_token }}{{ eos_token }}]", &bare, NULL, &out, &d), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "[]");
    shoal_buf_fini(&out);
    cJSON_Delete(msgs);
    cJSON_Delete(null);
    cJSON_Delete(extra);
}

/* The ChatML fallback renders what README documents. */
static void test_chatml(void)
{
    cJSON *msgs = cJSON_Parse("[{\"role\":\"system\",\"content\":\"S\"},"
                              "{\"role\":\"user\",\"content\":\"U\"}]");
    struct engine_chat chat = {.messages = msgs, .add_generation_prompt = true};
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    CHECK_EQ_INT(render_with(engine_chatml_template, &chat, NULL, &out, &d), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                                    "<|im_start|>assistant\n");
    shoal_buf_fini(&out);
    cJSON_Delete(msgs);
}

static void test_strftime(void)
{
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    CHECK_EQ_INT(render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %j %H:%M:%S %p "
                        "%y %U %W %V %G %u %w %e %F %T %%') }}",
                        &out, &d),
                 SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "22 Nov 2026|Sunday November 22 326 00:00:00 AM 26 47 46 47 "
                                    "2026 7 0 22 2026-11-22 00:00:00 %");
    shoal_buf_fini(&out);
}

/* HF's functionary template relies on markupsafe: Markup + str escapes. */
static void test_markup(void)
{
    struct shoal_buf out;
    struct shoal_diag d;
    shoal_buf_init(&out, 1u << 20);
    CHECK_EQ_INT(render("{{ \"Use '\"|safe + messages[1].content + \"'\\n\"|safe + d|tojson }}|"
                        "{{ '<b>'|e }}|{{ ('<'|safe) ~ '<' }}|{{ '%s' % '<'|safe }}",
                        &out, &d),
                 SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out),
              "Use 'Hi &lt;there&gt; &amp; &#39;you&#39; &#34;q&#34;'\n"
              "{&#34;b&#34;: 2, &#34;a&#34;: 1, &#34;items&#34;: &#34;x&#34;}|&lt;b&gt;|<<|<");
    shoal_buf_fini(&out);
}

struct thread_arg {
    const struct engine_template *t;
    const char *want;
    int failures;
};

static void *render_thread(void *p)
{
    struct thread_arg *a = p;
    struct engine_chat chat = table_chat();
    for (int i = 0; i < 200; i++) {
        struct shoal_buf out;
        struct shoal_diag d;
        shoal_buf_init(&out, 1u << 20);
        if (engine_template_render_at(a->t, &chat, fixed_now(), true, &out, &d) != SHOAL_OK ||
            strcmp(shoal_buf_cstr(&out), a->want) != 0)
            a->failures++;
        shoal_buf_fini(&out);
    }
    return NULL;
}

/* A parsed template is immutable: several threads render it at once. */
static void test_threads(void)
{
    const char *src = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                      "{{ m.role }}:{{ m.content|string|trim }}|{% endfor %}{{ ns.n }}{{ 'x' ~ s }}";
    struct engine_template *t = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(engine_template_parse(src, strlen(src), &t, &d), SHOAL_OK);
    if (!t)
        return;
    struct shoal_buf want;
    shoal_buf_init(&want, 1u << 20);
    struct engine_chat chat = table_chat();
    CHECK_EQ_INT(engine_template_render_at(t, &chat, fixed_now(), true, &want, &d), SHOAL_OK);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){t, shoal_buf_cstr(&want), 0};
        CHECK(pthread_create(&th[i], NULL, render_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
    }
    shoal_buf_fini(&want);
    engine_template_free(t);
}

int main(void)
{
    ctx = cJSON_Parse(ctx_json);
    CHECK(ctx != NULL);
    if (!ctx)
        return test_report("test_template");
    test_table();
    test_errors();
    test_raise_exception();
    test_caps();
    test_inputs();
    test_chatml();
    test_strftime();
    test_markup();
    test_threads();
    engine_template_free(NULL);
    cJSON_Delete(ctx);
    return test_report("test_template");
}
