#!/usr/bin/env python3
"""test_model_inspect.py: runs `shoal model inspect` as a user would.

Usage: test_model_inspect.py SHOAL [REF_DIR]

Without REF_DIR: usage errors (exit 2) and rejected files (exit 1, with
"shoal: FILE: byte N: message") on files made here. With REF_DIR
(shared/ref): every .gguf under models/ and vocab/ must inspect with exit 0,
print its architecture, and give JSON whose n_params / n_vocab match
llama.cpp's .ref.json; --template must print phi-3's template byte for byte.
Python standard library only.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL: " + what, file=sys.stderr)


def run(shoal, *args):
    p = subprocess.run([shoal, "model", *args], capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def self_contained(shoal):
    rc, _, err = run(shoal)
    check(rc == 2 and "usage: shoal model inspect" in err, "no subcommand -> 2")
    rc, _, err = run(shoal, "frobnicate", "x")
    check(rc == 2 and "unknown subcommand" in err, "unknown subcommand -> 2")
    rc, _, err = run(shoal, "inspect")
    check(rc == 2 and "no FILE" in err, "no FILE -> 2")
    rc, _, err = run(shoal, "inspect", "a", "b")
    check(rc == 2, "two files -> 2")
    rc, _, err = run(shoal, "inspect", "a", "--bogus")
    check(rc == 2 and "--bogus" in err, "unknown option -> 2")
    rc, _, err = run(shoal, "inspect", "a", "--json", "--template")
    check(rc == 2, "--json with --template -> 2")

    with tempfile.TemporaryDirectory() as d:
        missing = os.path.join(d, "missing.gguf")
        rc, _, err = run(shoal, "inspect", missing)
        check(rc == 1 and err.startswith("shoal: " + missing + ": cannot open"), "missing -> 1: " + err)

        bad = os.path.join(d, "v1.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x01\x00\x00\x00" + b"\x00" * 16)
        rc, _, err = run(shoal, "inspect", bad)
        check(rc == 1 and err == "shoal: %s: byte 4: header: GGUF version 1 is not supported "
              "(only 2 and 3); convert the model again with a current llama.cpp\n" % bad,
              "v1 -> 1: " + err)

        text = os.path.join(d, "notes.txt")
        with open(text, "wb") as f:
            f.write(b"hello, world\n" * 4)
        rc, _, err = run(shoal, "inspect", text)
        check(rc == 1 and "byte 0: header: not a GGUF file" in err, "text -> 1: " + err)

        # A minimal valid file: no keys, no tensors.
        empty_ok = os.path.join(d, "bare.gguf")
        with open(empty_ok, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)
        rc, out, err = run(shoal, "inspect", empty_ok)
        check(rc == 0 and b"architecture    (none)" in out and b"ChatML fallback" in out,
              "bare file -> 0: " + err)
        rc, out, err = run(shoal, "inspect", empty_ok, "--template")
        check(rc == 0 and out == b"" and "ChatML fallback" in err, "bare --template")


def with_ref(shoal, ref):
    files = sorted(glob.glob(os.path.join(ref, "models", "*.gguf")) +
                   glob.glob(os.path.join(ref, "vocab", "*.gguf")))
    check(len(files) == 32, "32 reference files, found %d" % len(files))
    for path in files:
        rc, out, err = run(shoal, "inspect", path)
        text = out.decode("utf-8", "replace")
        check(rc == 0, "%s: exit %d: %s" % (path, rc, err))
        arch = re.search(r"^architecture\s+(\S+)$", text, re.M)
        check(arch is not None, path + ": no architecture line")
        check(re.search(r"^chat template\s+", text, re.M) is not None, path + ": no chat template line")

        rc, out, err = run(shoal, "inspect", path, "--json")
        check(rc == 0, path + " --json: exit %d" % rc)
        try:
            desc = json.loads(out)
        except ValueError as e:
            check(False, "%s --json: %s" % (path, e))
            continue
        check(arch is not None and desc["architecture"] == arch.group(1), path + ": arch differs")
        check(desc["file_size"] == os.path.getsize(path), path + ": file_size")
        refjson = path + ".ref.json"
        if os.path.exists(refjson):
            with open(refjson) as f:
                ref_desc = json.load(f)
            check(desc["n_params"] == ref_desc["n_params"], path + ": n_params")
            check(desc["hparams"]["n_vocab"] == ref_desc["n_vocab"], path + ": n_vocab")
            check(desc["architecture"] == ref_desc["arch"], path + ": arch vs ref.json")
        tmpl = desc["chat_template"]
        check(tmpl["present"] or tmpl["fallback"] == "chatml", path + ": fallback")

    q4 = os.path.join(ref, "models", "llama-tiny-Q4_K_M.gguf")
    rc, out, _ = run(shoal, "inspect", q4)
    check(b"tensors         21: Q4_K\xc3\x9713, Q6_K\xc3\x973, F32\xc3\x975" in out, "Q4_K_M mix line")

    phi3 = os.path.join(ref, "vocab", "ggml-vocab-phi-3.gguf")
    rc, out, err = run(shoal, "inspect", phi3, "--template")
    with open(os.path.join(ref, "templates", "ggml-vocab-phi-3.jinja"), "rb") as f:
        want = f.read()
    check(rc == 0 and out == want, "phi-3 --template prints the template exactly")

    # A reference file cut short is rejected with its byte offset.
    with tempfile.TemporaryDirectory() as d:
        cut = os.path.join(d, "cut.gguf")
        with open(q4, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) - 100])
        rc, _, err = run(shoal, "inspect", cut)
        check(rc == 1 and re.match(r"shoal: .*cut\.gguf: byte \d+: tensor \d+ \('[^']+'\): data "
                                   r"\[\d+, \d+\) runs past the end of the file", err) is not None,
              "cut file: " + err)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    shoal = sys.argv[1]
    self_contained(shoal)
    if len(sys.argv) > 2:
        with_ref(shoal, sys.argv[2])
    print("test_model_inspect: %s" % ("ok" if failures == 0 else "%d failed" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
