#!/usr/bin/env python3
"""test_template_cli.py: drives the real `shoal template render` over a few
entries of the reference chat-template suite and checks the prompt byte for
byte, the error format and exit codes (1: template error, 2: usage), the
--vars/--tools/--bos/--eos/--json options, standard input, and a model's own
template (ggml-vocab-phi-3.gguf, with its bos token). Python 3 standard
library only. Usage: test_template_cli.py SHOAL REF_DIR"""
import json
import os
import subprocess
import sys
import tempfile

SHOAL, REF = sys.argv[1], sys.argv[2]
TPL = os.path.join(REF, "templates")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def run(args, stdin=None):
    p = subprocess.run([SHOAL, "template"] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


index = json.load(open(os.path.join(TPL, "index.json"), encoding="utf-8"))
cases = {c["id"]: c for c in json.load(open(os.path.join(TPL, "cases.json"), encoding="utf-8"))["cases"]}


def entry(stem, case, gen):
    for r in index["renders"]:
        if r["template"] == stem and r["case"] == case and r["add_generation_prompt"] == gen:
            return r
    raise KeyError((stem, case, gen))


tmp = tempfile.mkdtemp(prefix="shoal-template-cli-")


def write(name, obj):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


def render_entry(stem, case_id, gen, split_tools=False):
    r = entry(stem, case_id, gen)
    case = dict(cases[case_id])
    args = ["render", "--template", os.path.join(TPL, stem + ".jinja")]
    extra = {k: v for k, v in r["vars"].items() if k not in ("bos_token", "eos_token")}
    if split_tools and "tools" in case:
        args += ["--tools", write("tools.json", case.pop("tools"))]
    args += ["--messages", write("case.json", case)]
    if extra:
        args += ["--vars", write("vars.json", extra)]
    args += ["--bos", r["vars"]["bos_token"], "--eos", r["vars"]["eos_token"]]
    if gen:
        args.append("--generation-prompt")
    rc, out, err = run(args)
    what = "%s/%s%s" % (stem, case_id, ".gen" if gen else "")
    if r["error"]:
        check(rc == 1, what + ": exit 1 expected, got %d" % rc)
        check(err.startswith("shoal: template error at ") and out == b"", what + ": error format: " + err)
        if r["error_kind"] == "raise_exception":
            check(r["error_message"] in err, what + ": message: " + err)
    else:
        want = open(os.path.join(TPL, r["expected"]), "rb").read()
        check(rc == 0 and out == want, what + ": output differs (rc %d): %s" % (rc, err))


render_entry("Qwen-Qwen2.5-7B-Instruct", "tools_roundtrip", True)
render_entry("Qwen-Qwen2.5-7B-Instruct", "tools_roundtrip", False, split_tools=True)
render_entry("meta-llama-Llama-3.1-8B-Instruct", "extra_context", True)
render_entry("fireworks-ai-llama-3-firefunction-v2", "tools", False)
render_entry("CohereForAI-c4ai-command-r-plus-tool_use", "unicode", True)
render_entry("google-gemma-2-2b-it", "system_user", True)
render_entry("HuggingFaceTB-SmolLM2-135M-Instruct", "tool_result", False)
render_entry("Qwen-Qwen3-0.6B", "thinking_history", False)

# A bare message array on standard input.
r = entry("microsoft-Phi-3.5-mini-instruct", "multi_turn", True)
rc, out, err = run(["render", "--template", os.path.join(TPL, "microsoft-Phi-3.5-mini-instruct.jinja"),
                    "--messages", "-", "--generation-prompt", "--eos", "<|endoftext|>"],
                   stdin=json.dumps(cases["multi_turn"]["messages"]).encode())
check(rc == 0 and out == open(os.path.join(TPL, r["expected"]), "rb").read(), "stdin messages: " + err)

# --json wraps the prompt.
rc, out, err = run(["render", "--template", os.path.join(TPL, "ggml-vocab-phi-3.jinja"),
                    "--messages", write("m.json", cases["user"]["messages"]), "--bos", "<s>", "--json"])
check(rc == 0 and json.loads(out)["prompt"] == open(os.path.join(TPL, "expected/ggml-vocab-phi-3/user.txt"),
                                                    encoding="utf-8").read(), "--json: " + err)

# The model's own template and bos token.
gguf = os.path.join(REF, "vocab", "ggml-vocab-phi-3.gguf")
if os.path.exists(gguf):
    for case_id in ("multi_turn", "unicode"):
        rc, out, err = run(["render", "--model", gguf, "--messages", write("c.json", cases[case_id])])
        want = open(os.path.join(TPL, "expected/ggml-vocab-phi-3/%s.txt" % case_id), "rb").read()
        check(rc == 0 and out == want, "--model phi-3 %s: rc %d %s" % (case_id, rc, err))

# --now fixes what strftime_now() returns: Llama 3.2 prints today's date
# in its system header; 86400 * 365 seconds after the epoch is 01 Jan 1971.
llama32 = os.path.join(TPL, "meta-llama-Llama-3.2-3B-Instruct.jinja")
user = write("u.json", cases["user"])
rc, out, err = run(["render", "--template", llama32, "--messages", user, "--now", str(86400 * 365)])
check(rc == 0 and b"Today Date: 01 Jan 1971" in out, "--now: rc %d %s %r" % (rc, err, out[:200]))
rc, out, err = run(["render", "--template", llama32, "--messages", user, "--now", "soon"])
check(rc == 2 and "--now" in err, "--now soon: exit %d %s" % (rc, err))

# A syntax error: located, exit 1.
bad = os.path.join(tmp, "bad.jinja")
with open(bad, "w") as f:
    f.write("line one\n{{ messages[0] | }}")
rc, out, err = run(["render", "--template", bad, "--messages", write("m.json", [])])
check(rc == 1 and err.startswith("shoal: template error at 2:"), "syntax error: %d %s" % (rc, err))

# Usage errors exit 2.
for args in (["render"], ["render", "--template", bad], ["draw", "--template", bad],
             ["render", "--template", bad, "--model", bad, "--messages", "x"],
             ["render", "--template", bad, "--messages", "x", "--bogus"]):
    rc, out, err = run(args)
    check(rc == 2, "usage %s: exit %d" % (args, rc))

# Input problems exit 1 with the file named.
rc, out, err = run(["render", "--template", bad, "--messages", os.path.join(tmp, "missing.json")])
check(rc == 1 and "missing.json" in err, "missing file: %d %s" % (rc, err))
with open(os.path.join(tmp, "notjson.json"), "w") as f:
    f.write("[{")
rc, out, err = run(["render", "--template", bad, "--messages", os.path.join(tmp, "notjson.json")])
check(rc == 1 and "notjson.json" in err, "bad json: %d %s" % (rc, err))

print("test_template_cli: %d failures" % failures)
sys.exit(1 if failures else 0)
