/* test_sandbox.c: the escape suite for tools/sandbox.c and pattern.c. Each
 * attempt to leave the sandbox or to outlast its limits must end as a
 * structured error (or a harmless value), quickly, without a crash: the
 * library surface is exactly the allowed one; bytecode, debug, io, os,
 * package and require are unreachable; metatable tampering does not
 * survive a call; infinite loops in plain code, pcall, coroutines, error
 * handlers and finalizers stop; memory bombs hit the heap cap; long C calls
 * (pathological patterns, table shifts, sort, comparisons of long strings)
 * are bounded by the deadline. */
#include "tools_test.h"

static struct tools_registry *reg;
static const char *dir;

/* Tools under test stop after this many ms. */
#define FAST "timeout_ms = 300,"

static void add(const char *name, const char *extra, const char *body)
{
    tt_tool(dir, name, extra, body);
}

static void define_tools(void)
{
    add("surface", "",
        "local out = {}\n"
        "local compat = {atan2 = 1, cosh = 1, frexp = 1, ldexp = 1, log10 = 1, pow = 1,\n"
        "  sinh = 1, tanh = 1} -- LUA_COMPAT_MATHLIB in some builds: plain math\n"
        "local function keys(t, prefix)\n"
        "  local ks = {}\n"
        "  for k in pairs(t) do\n"
        "    if not (prefix == 'math.' and compat[k]) then ks[#ks + 1] = prefix .. k end\n"
        "  end\n"
        "  table.sort(ks)\n"
        "  return table.concat(ks, ' ')\n"
        "end\n"
        "out[1] = keys(_G, '')\n"
        "for _, lib in ipairs({'string', 'table', 'math', 'utf8', 'coroutine', 'os', 'json'}) do\n"
        "  out[#out + 1] = keys(_G[lib], lib .. '.')\n"
        "end\n"
        "return table.concat(out, '\\n')");
    add("dump", "", "return string.dump(function() end)");
    add("binary_load", "",
        "local f, err = load('\\27LuaT\\0\\25\\147\\13\\10\\26\\10\\4\\8\\8')\n"
        "assert(f == nil)\n"
        "local g, err2 = load('\\27LuaT', 'x', 'b')\n"
        "assert(g == nil)\n"
        "local parts = {'\\27Lua', 'T'}\n"
        "local h, err3 = load(function() return table.remove(parts, 1) end)\n"
        "assert(h == nil)\n"
        "return {err, err2, err3}");
    add("load_env", "",
        "visible = 42\n"
        "local f = load('return visible, type(io), type(debug), type(require), type(package), "
        "type(os.execute), type(dofile), type(loadfile), type(collectgarbage)')\n"
        "local r = {f()}\n"
        "local g = load('return visible', 'chunk', 't', {})\n"
        "r[#r + 1] = tostring(g())\n"
        "return r");
    add("debug", "", "return debug.getinfo(1)");
    add("io", "", "return io.open('/etc/passwd'):read('a')");
    add("os_execute", "", "return os.execute('id')");
    add("os_getenv", "", "return os.getenv('HOME')");
    add("os_others", "",
        "return {os.exit == nil, os.remove == nil, os.rename == nil, os.tmpname == nil, "
        "os.setlocale == nil, os.difftime == nil}");
    add("package", "", "return package.loadlib('libc.so.6', 'system')");
    add("require", "", "return require('io')");
    add("tamper", "",
        "if args.tamper then\n"
        "  getmetatable('').__index = function() return function() return 'pwned' end end\n"
        "  string.upper = function() return 'pwned' end\n"
        "  table.concat = nil\n"
        "  setmetatable(_G, {__index = function() return 'pwned' end})\n"
        "end\n"
        "return {('x'):upper(), string.upper('y'), type(table.concat), tostring(nonexistent)}");
    add("loop", FAST, "while true do end");
    add("loop_pcall", FAST, "while true do pcall(function() while true do end end) end");
    add("loop_pcall_return", FAST,
        "pcall(function() while true do end end)\n"
        "return 'survived'");
    add("loop_coroutine", FAST,
        "local co = coroutine.wrap(function() while true do end end)\nco()");
    add("loop_coroutines", FAST,
        "while true do\n"
        "  coroutine.resume(coroutine.create(function() while true do end end))\n"
        "end");
    add("loop_nested_coroutine", FAST,
        "local function deep(n)\n"
        "  if n == 0 then while true do end end\n"
        "  return coroutine.wrap(function() return deep(n - 1) end)()\n"
        "end\n"
        "while true do pcall(deep, 50) end");
    add("loop_handler", FAST,
        "while true do xpcall(function() error('x') end, function() while true do end end) end");
    add("loop_handler_once", FAST,
        "return {xpcall(function() while true do end end, function(e) while true do end end)}");
    add("xpcall_ok", "",
        "local r = {xpcall(function(a, b) return a + b end, debug_handler or print, 2, 3)}\n"
        "local s = {xpcall(function() error('bad', 0) end, function(e) return 'handled: ' .. e "
        "end)}\n"
        "return {r[1], r[2], s[1], s[2]}");
    add("loop_close", FAST,
        "pcall(function()\n"
        "  local t <close> = setmetatable({}, {__close = function() while true do end end})\n"
        "  error('boom')\n"
        "end)");
    add("loop_close_coroutine", FAST,
        "local co = coroutine.create(function()\n"
        "  local t <close> = setmetatable({}, {__close = function() while true do end end})\n"
        "  coroutine.yield()\n"
        "end)\n"
        "coroutine.resume(co)\n"
        "coroutine.close(co)");
    add("close_not_run_on_death", FAST,
        "local t <close> = setmetatable({}, {__close = function() while true do end end})\n"
        "error('boom')");
    add("loop_gsub", FAST, "while true do ('x'):gsub('x', function() while true do end end) end");
    add("recursion_lua", "", "local function f(n) return 1 + f(n + 1) end\nreturn f(1)");
    add("recursion_c", "",
        "local t = setmetatable({}, {__index = function(t, k) return t[k] end})\nreturn t.x");
    add("recursion_gsub", "", "local function f(s) return (s:gsub('.', f)) end\nreturn f('ab')");
    add("recursion_wrap", "", "local function f() return coroutine.wrap(f)() end\nreturn f()");
    add("recursion_pcall", "",
        "local function f() return pcall(f) end\nlocal r = {f()}\nreturn tostring(r[#r])");
    add("rep_bomb", "", "return #string.rep('x', 1e9)");
    add("rep_bomb_sep", "", "return #string.rep('x', 2^28, 'yy')");
    add("rep_empty", FAST, "return {#string.rep('', 2^62), #string.rep('', 2^62, '')}");
    add("table_bomb", "", "local t = {}\nfor i = 1, 1e9 do t[i] = i end");
    add("concat_bomb", "", "local s = 'x'\nwhile true do s = s .. s end");
    /* The default deadline: filling the memory cap takes longer than FAST
     * under ASan on a loaded machine, and the deadline is not what this
     * one is about. */
    add("table_bomb_pcall", "",
        "local ok, err = pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end)\n"
        "return {ok, err}");
    add("gc_loop", FAST,
        "setmetatable({}, {__gc = function() while true do end end})\nreturn 'set'");
    add("gc_late", FAST,
        "local mt = {}\n"
        "local t = setmetatable({}, mt)\n"
        "mt.__gc = function() while true do end end\n"
        "t = nil\n"
        "return 'late'");
    add("gc_array_mt", FAST,
        "local mt = getmetatable(json.array())\n"
        "return type(mt)");
    add("find_pathological", FAST,
        "local s = string.rep('a', 3000)\n"
        "return s:find(string.rep('a*', 12) .. 'b')");
    add("match_pathological", FAST,
        "local s = string.rep('a', 3000)\n"
        "return s:match(string.rep('.-', 10) .. 'x')");
    add("gmatch_pathological", FAST,
        "local s = string.rep('a', 3000)\n"
        "for w in s:gmatch(string.rep('a?', 40) .. 'b') do end");
    add("gsub_pathological", FAST,
        "local s = string.rep('a', 3000)\n"
        "return s:gsub(string.rep('a-', 12) .. 'b', '')");
    add("find_plain_fast", FAST,
        "local s = string.rep('a', 4000000)\n"
        "local p = string.rep('a', 200000) .. 'b'\n"
        "return {s:find(p, 1, true) == nil, s:find('aab', 1, true) == nil}");
    add("table_move", FAST, "table.move({}, 1, math.maxinteger // 2, 1, {})");
    add("table_insert_len", FAST,
        "local t = setmetatable({}, {__len = function() return 2^62 end})\n"
        "table.insert(t, 1, 'x')");
    add("table_remove_len", FAST,
        "local t = setmetatable({}, {__len = function() return 2^62 end})\n"
        "table.remove(t, 1)");
    add("sort_long_strings", FAST,
        "local s = string.rep('x', 8000000)\n"
        "local t = {}\n"
        "for i = 1, 200000 do t[i] = s end\n"
        "table.sort(t)");
    add("compare_long_strings", FAST,
        "local a = string.rep('x', 8000000)\n"
        "local b = string.rep('x', 8000000)\n"
        "while true do local _ = a < b end");
    add("date_format", "", "return os.date(string.rep('%c', 1000))");
    add("budget", "instructions = 10000,", "for i = 1, 1e7 do end");
    add("small_memory", "memory_bytes = 262144,",
        "local t = {}\nfor i = 1, 1e6 do t[i] = tostring(i) end");
    add("yield_top", "", "coroutine.yield(1)");
    add("print_log", "", "print('hello', 1, true, nil)\nctx.log('two')\nreturn 'done'");
    add("log_flood", "", "for i = 1, 1000 do ctx.log('line ' .. i) end\nreturn 'flooded'");
    add("log_binary", "", "ctx.log('bad \\255 byte')\nreturn 1");
    add("error_table", "", "error({code = 1})");
    add("error_plain", "", "error('plain failure')");
    add("error_level0", "", "error('no position', 0)");
    add("nil_message", "", "return nil, 'not found: Atlantis'");
    add("load_loop", FAST, "load('while true do end')()");
    add("chunk_too_big", "",
        "local f, err = load(string.rep(' ', 2 * 1024 * 1024))\nreturn {f == nil, err}");
    add("string_methods", "",
        "return {('%d'):format(7), ('abc'):upper(), ('a,b'):find(',', 1, true), "
        "('key=val'):match('(%w+)=(%w+)'), ('hello'):gsub('l', 'L'), ('x'):rep(3, '-')}");
    add("coroutine_ok", "",
        "local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)\n"
        "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 "
        "end)\n"
        "local _, x = coroutine.resume(co, 1)\n"
        "local _, y = coroutine.resume(co, 10)\n"
        "return {gen(), gen(), gen(), x, y, coroutine.status(co)}");
}

static void check_surface(void)
{
    struct tt_out o = tt_call(reg, "surface", NULL);
    CHECK_STR(o.type, "ok");
    const char *want =
        "\"_G _VERSION assert error getmetatable ipairs load next pairs pcall print rawequal "
        "rawget rawlen rawset select setmetatable tonumber tostring type xpcall\\n"
        "string.byte string.char string.find string.format string.gmatch string.gsub "
        "string.len string.lower string.match string.pack string.packsize string.rep "
        "string.reverse string.sub string.unpack string.upper\\n"
        "table.concat table.insert table.move table.pack table.remove table.sort table.unpack\\n"
        "math.abs math.acos math.asin math.atan math.ceil math.cos math.deg math.exp "
        "math.floor math.fmod math.huge math.log math.max math.maxinteger math.min "
        "math.mininteger math.modf math.pi math.rad math.random math.randomseed math.sin "
        "math.sqrt math.tan math.tointeger math.type math.ult\\n"
        "utf8.char utf8.charpattern utf8.codepoint utf8.codes utf8.len utf8.offset\\n"
        "coroutine.close coroutine.create coroutine.isyieldable coroutine.resume "
        "coroutine.running coroutine.status coroutine.wrap coroutine.yield\\n"
        "os.clock os.date os.time\\n"
        "json.array json.decode json.encode json.is_array json.null\"";
    /* Globals also include the libraries themselves. */
    char *p = strstr(o.value, "assert");
    CHECK(p != NULL);
    CHECK_CONTAINS(o.value, "_G _VERSION assert coroutine error getmetatable ipairs json load "
                            "math next os pairs pcall print rawequal rawget rawlen rawset "
                            "select setmetatable string table tonumber tostring type utf8 "
                            "xpcall\\n");
    /* Compare the library lines exactly. */
    const char *lib = strstr(o.value, "\\nstring.");
    const char *want_lib = strstr(want, "\\nstring.");
    CHECK(lib && want_lib);
    if (lib && want_lib)
        CHECK_STR(lib, want_lib);
}

static void check_escapes(void)
{
    struct tt_out o;
    o = tt_call(reg, "dump", NULL);
    CHECK_ERR(o, "tool_error", "attempt to call a nil value (field 'dump')");

    o = tt_call(reg, "binary_load", NULL);
    CHECK_STR(o.type, "ok");
    CHECK_CONTAINS(o.value, "attempt to load a binary chunk (mode is 't')");
    CHECK_CONTAINS(o.value, "\"attempt to load a binary chunk (mode is 't')\","
                            "\"attempt to load a binary chunk (mode is 't')\"");

    o = tt_call(reg, "load_env", NULL);
    CHECK_OK(o, "[42,\"nil\",\"nil\",\"nil\",\"nil\",\"nil\",\"nil\",\"nil\",\"nil\",\"nil\"]");

    o = tt_call(reg, "debug", NULL);
    CHECK_ERR(o, "tool_error", "attempt to index a nil value (global 'debug')");
    o = tt_call(reg, "io", NULL);
    CHECK_ERR(o, "tool_error", "attempt to index a nil value (global 'io')");
    o = tt_call(reg, "os_execute", NULL);
    CHECK_ERR(o, "tool_error", "attempt to call a nil value (field 'execute')");
    o = tt_call(reg, "os_getenv", NULL);
    CHECK_ERR(o, "tool_error", "attempt to call a nil value (field 'getenv')");
    o = tt_call(reg, "os_others", NULL);
    CHECK_OK(o, "[true,true,true,true,true,true]");
    o = tt_call(reg, "package", NULL);
    CHECK_ERR(o, "tool_error", "attempt to index a nil value (global 'package')");
    o = tt_call(reg, "require", NULL);
    CHECK_ERR(o, "tool_error", "attempt to call a nil value (global 'require')");

    /* Tampering in one call is gone in the next (a fresh state each). */
    o = tt_call(reg, "tamper", "{\"tamper\": true}");
    CHECK_OK(o, "[\"pwned\",\"pwned\",\"nil\",\"pwned\"]");
    o = tt_call(reg, "tamper", NULL);
    CHECK_OK(o, "[\"X\",\"Y\",\"function\",\"nil\"]");
}

static void check_stopped(const char *name, const char *type, const char *needle, uint64_t max_ms)
{
    struct tt_out o = tt_call(reg, name, NULL);
    CHECK_ERR(o, type, needle);
    if (getenv("TT_VERBOSE"))
        fprintf(stderr, "%-24s %5llu ms  %s\n", name, (unsigned long long)o.elapsed_ms, o.msg);
    if (o.elapsed_ms > max_ms) {
        fprintf(stderr, "%s: took %llu ms (want <= %llu)\n", name, (unsigned long long)o.elapsed_ms,
                (unsigned long long)max_ms);
        test_failures++;
    }
    test_checks++;
}

static void check_loops(void)
{
    check_stopped("loop", "timeout", "deadline of 300 ms exceeded (stopped at loop.lua:", 1500);
    check_stopped("loop_pcall", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_pcall_return", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_coroutine", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_coroutines", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_nested_coroutine", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_handler", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_handler_once", "timeout", "deadline of 300 ms exceeded", 1500);
    struct tt_out o = tt_call(reg, "xpcall_ok", NULL);
    CHECK_OK(o, "[true,5,false,\"handled: bad\"]");
    check_stopped("loop_close", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("loop_close_coroutine", "timeout", "deadline of 300 ms exceeded", 1500);
    /* A coroutine that dies of an error does not run its __close (Lua's
     * rule), and the state is simply dropped. */
    struct tt_out dead = tt_call(reg, "close_not_run_on_death", NULL);
    CHECK_ERR(dead, "tool_error", "boom");
    check_stopped("loop_gsub", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("load_loop", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("budget", "timeout", "instruction budget of 10000 exceeded", 1500);
}

static void check_recursion(void)
{
    struct tt_out o;
    o = tt_call(reg, "recursion_lua", NULL);
    CHECK(o.err == TOOLS_ERR_TOOL || o.err == TOOLS_ERR_MEMORY);
    CHECK(strstr(o.msg, "stack overflow") || strstr(o.msg, "memory"));
    o = tt_call(reg, "recursion_c", NULL);
    CHECK_ERR(o, "tool_error", "stack overflow");
    o = tt_call(reg, "recursion_gsub", NULL);
    CHECK_ERR(o, "tool_error", "stack overflow");
    o = tt_call(reg, "recursion_wrap", NULL);
    CHECK_ERR(o, "tool_error", "recursion_wrap.lua:7:"); /* each wrap level adds a position */
    o = tt_call(reg, "recursion_pcall", NULL);
    CHECK_STR(o.type, "ok");
    CHECK_CONTAINS(o.value, "stack overflow");
}

static void check_memory(void)
{
    struct tt_out o;
    o = tt_call(reg, "rep_bomb", NULL);
    CHECK_ERR(o, "memory", "memory cap of 33554432 bytes exceeded");
    o = tt_call(reg, "rep_bomb_sep", NULL);
    CHECK_ERR(o, "memory", "memory cap");
    o = tt_call(reg, "rep_empty", NULL);
    CHECK_OK(o, "[0,0]");
    o = tt_call(reg, "table_bomb", NULL);
    CHECK_ERR(o, "memory", "memory cap");
    o = tt_call(reg, "concat_bomb", NULL);
    CHECK_ERR(o, "memory", "memory cap");
    /* A memory error caught by the tool is just an error value. */
    o = tt_call(reg, "table_bomb_pcall", NULL);
    CHECK_OK(o, "[false,\"not enough memory\"]");
    o = tt_call(reg, "small_memory", NULL);
    CHECK_ERR(o, "memory", "memory cap of 262144 bytes exceeded");
    o = tt_call(reg, "chunk_too_big", NULL);
    CHECK_OK(o, "[true,\"chunk larger than 1048576 bytes\"]");
}

static void check_finalizers(void)
{
    struct tt_out o;
    o = tt_call(reg, "gc_loop", NULL);
    CHECK_ERR(o, "tool_error", "__gc metamethods are not allowed");
    o = tt_call(reg, "gc_late", NULL);
    CHECK_OK(o, "\"late\"");
    CHECK(o.elapsed_ms < 1000);
    o = tt_call(reg, "gc_array_mt", NULL);
    CHECK_OK(o, "\"string\"");
}

static void check_long_c_calls(void)
{
    check_stopped("find_pathological", "timeout", "exceeded", 1500);
    check_stopped("match_pathological", "timeout", "exceeded", 1500);
    check_stopped("gmatch_pathological", "timeout", "exceeded", 1500);
    check_stopped("gsub_pathological", "timeout", "exceeded", 1500);
    struct tt_out o = tt_call(reg, "find_plain_fast", NULL);
    CHECK_OK(o, "[true,true]");
    CHECK(o.elapsed_ms < 1000);
    check_stopped("table_move", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("table_insert_len", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("table_remove_len", "timeout", "deadline of 300 ms exceeded", 1500);
    check_stopped("sort_long_strings", "timeout", "deadline of 300 ms exceeded", 2000);
    check_stopped("compare_long_strings", "timeout", "deadline of 300 ms exceeded", 2000);
    o = tt_call(reg, "date_format", NULL);
    CHECK_ERR(o, "tool_error", "format too long");
}

static void check_misc(void)
{
    struct tt_out o;
    o = tt_call(reg, "yield_top", NULL);
    CHECK_ERR(o, "tool_error", "coroutine.yield outside of a coroutine");
    o = tt_call(reg, "print_log", NULL);
    CHECK_OK(o, "\"done\"");
    CHECK_STR(o.log, "[\"hello\\t1\\ttrue\\tnil\",\"two\"]");
    o = tt_call(reg, "log_flood", NULL);
    CHECK_OK(o, "\"flooded\"");
    CHECK_CONTAINS(o.log, "\"line 100\",\"(900 more log lines dropped)\"]");
    o = tt_call(reg, "log_binary", NULL);
    CHECK_STR(o.log, "[\"bad \xEF\xBF\xBD byte\"]");
    o = tt_call(reg, "error_table", NULL);
    CHECK_ERR(o, "tool_error", "(error object is a table value)");
    o = tt_call(reg, "error_plain", NULL);
    CHECK_ERR(o, "tool_error", "error_plain.lua:7: plain failure");
    o = tt_call(reg, "error_level0", NULL);
    CHECK_STR(o.msg, "no position");
    o = tt_call(reg, "nil_message", NULL);
    CHECK_ERR(o, "tool_error", "not found: Atlantis");
    o = tt_call(reg, "string_methods", NULL);
    CHECK_OK(o, "[\"7\",\"ABC\",2,\"key\",\"heLLo\",\"x-x-x\"]");
    o = tt_call(reg, "coroutine_ok", NULL);
    CHECK_OK(o, "[1,2,3,2,20,\"dead\"]");
    o = tt_call(reg, "no_such_tool", NULL);
    CHECK_ERR(o, "not_found", "no tool named 'no_such_tool'");
}

int main(void)
{
    struct tools_report r;
    dir = tt_tmpdir();
    define_tools();
    tools_report_init(&r);
    reg = tt_load(dir, &r);
    if (r.errors)
        fprintf(stderr, "%s", shoal_buf_cstr(&r.text));
    CHECK_EQ_INT(r.errors, 0);
    tools_report_fini(&r);

    check_surface();
    check_escapes();
    check_loops();
    check_recursion();
    check_memory();
    check_finalizers();
    check_long_c_calls();
    check_misc();

    tools_registry_free(reg);
    return test_report("test_sandbox");
}
