#!/usr/bin/env python3
"""test_tokenize_cli.py: drives the real `shoal tokenize` the way a person
debugging a prompt does. Usage: test_tokenize_cli.py SHOAL [REF_DIR].
Without REF_DIR only the usage errors are checked; with it, every input of
two reference vocabularies (SPM and byte-level BPE) is encoded through the
CLI (--json, --no-add-special) and must give llama.cpp's ids, and --decode
must give the input back, from arguments and from standard input."""
import json
import os
import subprocess
import sys

SEP = b"\n__ggml_vocab_test__\n"
failures = 0
passes = 0


def check(cond, what):
    global failures, passes
    if cond:
        passes += 1
    else:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def run(shoal, args, stdin=None):
    p = subprocess.run([shoal, "tokenize"] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def usage_checks(shoal):
    rc, _, err = run(shoal, ["hello"])
    check(rc == 2 and b"--model" in err, "missing --model is a usage error")
    rc, _, err = run(shoal, ["--model", "x.gguf"])
    check(rc == 2 and b"TEXT" in err, "missing TEXT is a usage error")
    rc, _, err = run(shoal, ["--model", "x.gguf", "--bogus", "t"])
    check(rc == 2 and b"unknown option" in err, "unknown option is a usage error")
    rc, _, err = run(shoal, ["--model", "/nonexistent/x.gguf", "t"])
    check(rc == 1 and b"/nonexistent/x.gguf" in err, "a missing file is rejected input")


def vocab_checks(shoal, ref, name):
    path = os.path.join(ref, "vocab", name)
    inputs = open(path + ".inp", "rb").read().split(SEP)[:-1]
    outputs = open(path + ".out", "rb").read().decode().split("\n")
    for i, text in enumerate(inputs):
        want = [int(x) for x in outputs[i].split()]
        # Arguments cannot carry NUL or start with '-': such inputs go by stdin.
        if text.startswith(b"-") or b"\0" in text or not text:
            rc, out, err = run(shoal, ["--model", path, "--json", "--no-add-special", "-"], text)
        else:
            rc, out, err = run(shoal, ["--model", path, "--json", "--no-add-special", "--", text])
        check(rc == 0, "%s input %d: exit %d %s" % (name, i, rc, err))
        if rc != 0:
            continue
        got = json.loads(out)
        ids = [t["id"] for t in got["tokens"]]
        check(ids == want and got["count"] == len(want), "%s input %d: %s != %s" % (name, i, ids, want))
        rc, back, err = run(shoal, ["--model", path, "--decode", ",".join(map(str, ids)) or " "])
        check(rc == 0 and back == text, "%s input %d: decode gave %r" % (name, i, back))
    # The human listing: one "id<TAB>piece" line per token, BOS first.
    rc, out, _ = run(shoal, ["--model", path, "Hello world"])
    lines = out.decode().splitlines()
    check(rc == 0 and len(lines) >= 2 and all("\t" in l for l in lines), "%s: listing %r" % (name, out))
    # Ids from standard input, and a bad id.
    rc, back, _ = run(shoal, ["--model", path, "--decode", "-"], b" ".join(b"%d" % w for w in want))
    check(rc == 0, "%s: --decode from stdin" % name)
    rc, _, err = run(shoal, ["--model", path, "--decode", "12 abc"])
    check(rc == 1 and b"abc" in err, "%s: a bad id is rejected input" % name)


def main():
    shoal = sys.argv[1]
    usage_checks(shoal)
    if len(sys.argv) > 2:
        ref = sys.argv[2]
        vocab_checks(shoal, ref, "ggml-vocab-llama-spm.gguf")
        vocab_checks(shoal, ref, "ggml-vocab-tiny-bpe.gguf")
        # --special parses control text; without it the text stays text.
        path = os.path.join(ref, "vocab", "ggml-vocab-tiny-bpe.gguf")
        rc, out, _ = run(shoal, ["--model", path, "--json", "--special", "<|im_start|>hi"])
        ids = [t["id"] for t in json.loads(out)["tokens"]]
        check(rc == 0 and ids[:2] == [1021, 1022], "--special: %s" % ids)
        rc, out, _ = run(shoal, ["--model", path, "--json", "--no-add-special", "<|im_start|>"])
        ids = [t["id"] for t in json.loads(out)["tokens"]]
        check(rc == 0 and 1022 not in ids and len(ids) > 1, "no --special: %s" % ids)
        rc, out, _ = run(shoal, ["--model", path, "--decode", "--special", "1022 71"])
        check(rc == 0 and out == b"<|im_start|>h", "--decode --special: %r" % out)
    print("%d passed, %d failed" % (passes, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
