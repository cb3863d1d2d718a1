#!/usr/bin/env python3
"""ponder against llama.cpp on identical weights, side by side, in one run (issue #21).

Usage:

    python3 bench/vs_llamacpp.py --model DIR [--threads 1,2] [--repeats 3] [--quick]
        [--python /work/refenv2/bin/python] [--cache ~/.cache/ponder-bench/llamacpp]
        [--ponder build/release/bin/ponder] [--offline] > result.json

DIR is a Hugging Face model directory (config.json, *.safetensors, optionally tokenizer.json /
tokenizer.model). One JSON object goes to stdout; progress and the commands run go to stderr.

The peer: llama.cpp as vendored in PyPI's `llama-cpp-python` sdist (version pinned below). The
script downloads the sdist with `pip download --no-binary :all: --no-deps`, unpacks it, builds
`llama-bench` and `llama-batched-bench` from vendor/llama.cpp (cmake, Release, GGML_NATIVE=ON, -j2)
and converts DIR with the vendored convert_hf_to_gguf.py (and its gguf-py) twice: to the
checkpoint's own dtype (bf16 / f16 / f32) and to q8_0. Sdist, build and GGUFs are cached under
--cache and reused (GGUFs keyed by the model dir, its files' sizes and mtimes, and the outtype).
The converter runs under --python, which must have torch, numpy, transformers and safetensors
(e.g. /work/refenv2/bin/python); the converter's Llama and Qwen classes also import sentencepiece
(whatever the tokenizer), which is pip-installed into --cache/pydeps when missing, with pyyaml
and tqdm, unless --no-install.

Tokenizer: the benchmarks feed random token ids, so only the vocabulary's size matters to them.
A DIR whose tokenizer the converter cannot take (none at all, as tools/make_random_model.py writes
without --tokenizer, or a BPE tokenizer whose pre-tokenizer hash the converter does not know, e.g.
a vocabulary cut down from Llama-3's) is converted from a staging directory that links DIR's
config and weights and adds a generated SentencePiece tokenizer.model (<unk>, <s>, </s> and the
256 byte pieces; the converter pads it to vocab_size with [PADn] tokens). The JSON says which
vocabulary each GGUF got.

What it measures, for each thread count T in --threads, in --repeats rounds (each round runs
every figure once per system, ponder first, so each figure alternates ponder, llama.cpp, ponder,
llama.cpp, ...):

  decode_batch1    ponder bench --batches 1,16 --decode-steps N  |  llama-bench -p 0 -n N -r 1
  prefill_512      ponder bench --prompt-lengths 512 (best of 2) |  llama-bench -p 512 -n 0 -r 2 (best)
  decode_batch16   ponder bench --batches 16                      |  llama-batched-bench -npp 128
                                                                     -ntg N -npl 16 (speed_tg)
  decode_batch1_8bit  llama.cpp on the q8_0 GGUF (llama-bench -n N) next to ponder's bf16 decode
  decode_batch1_int8_vs_q8_0  ponder bench --quantize int8 --batches 1 against the same Q8_0
                   figure, only when `ponder bench --help` offers --quantize
  ponder_offline   (--offline only) ponder bench --offline --requests K; ponder only

In the JSON each figure is results["T"][figure] = {ponder: {median, min, max, runs},
llama_cpp: {...}, ratio_ponder_over_llama_cpp_median, ratio_ponder_over_llama_cpp_best} in
tokens/s (the ratios: of the medians, of the best runs). The roofline is ponder bench's read-bandwidth probe measured in the
same run (the best of its huge-page probes at T threads over all of this run's ponder runs, the
figure ponder bench itself divides by); each decode figure is given as a fraction of it: tokens/s
x matrix weight bytes per token (ponder's weight_bytes_per_step; for llama.cpp every 2-D tensor
of the GGUF but token_embd) / bandwidth.

Noise: on a small shared VM other processes matter a lot (llama.cpp's spinning thread pool
collapses when a third process wants one of 2 cores). Each round records the share of the CPUs
other processes (and the hypervisor's steal) used while it ran, and the JSON carries a "warning"
for a thread count where that exceeded 5 % in a round it kept; such a round is run again, its
figures left out, up to --retry-busy K times per thread count (default 3; the JSON lists the
discarded rounds), and --wait-idle S waits up to S seconds before each round for the machine to
go idle.

Every subprocess runs with a timeout in its own process group; on timeout, Ctrl-C or SIGTERM the
group is killed. --quick: 32 decode tokens, 1 round (a check that the flow works, not a figure).
"""

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"  # vendors ggml-org/llama.cpp@0c1e57098 (its CHANGELOG.md)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "ponder-bench" / "llamacpp"
LLAMA_TARGETS = ("llama-bench", "llama-batched-bench")
# Modules the vendored converter imports for a Llama/Qwen checkpoint. The first group must be in
# --python's environment; the second is small and is pip-installed into the cache when missing.
CONVERTER_REQUIRED = ("torch", "numpy", "transformers", "safetensors")
CONVERTER_INSTALLABLE = {"sentencepiece": "sentencepiece==0.2.1", "yaml": "pyyaml", "tqdm": "tqdm"}
BATCHED_SEQUENCES = 16
BATCHED_PROMPT = 128
PREFILL_TOKENS = 512


class BenchError(RuntimeError):
    pass


def log(msg):
    print(f"[vs_llamacpp {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Subprocesses: each with a timeout, in its own process group, killed with its children.

_running = set()


def _kill_group(proc):
    """SIGTERM, then SIGKILL, to the child's whole process group (its children too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # nothing left in the group
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(cmd, timeout, *, what, env=None, cwd=None, log_file=None, check=True):
    """Runs cmd (a list); returns (returncode, stdout, stderr). With log_file, output goes there."""
    cmd = [str(c) for c in cmd]
    log(f"$ {shlex.join(cmd)}")
    out_f = open(log_file, "w") if log_file else subprocess.PIPE
    try:
        try:
            proc = subprocess.Popen(cmd, stdout=out_f, stdin=subprocess.DEVNULL, text=True, env=env,
                                    stderr=subprocess.STDOUT if log_file else subprocess.PIPE,
                                    cwd=cwd, start_new_session=True)
        except OSError as e:  # e.g. a binary being relinked right now
            raise BenchError(f"{what}: cannot start {cmd[0]}: {e}")
        _running.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise BenchError(f"{what}: timed out after {timeout} s: {shlex.join(cmd)}")
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            _running.discard(proc)
    finally:
        if log_file:
            out_f.close()
    out, err = out or "", err or ""
    if log_file:
        with open(log_file, errors="replace") as f:
            err = f.read()[-4000:]
    if check and proc.returncode != 0:
        raise BenchError(f"{what}: exit status {proc.returncode}: {shlex.join(cmd)}\n{err[-3000:]}")
    return proc.returncode, out, err


def stop_all():
    for proc in list(_running):
        _kill_group(proc)


# ---------------------------------------------------------------------------------------------
# The peer: llama-cpp-python's sdist, its vendored llama.cpp, built once per cache.


def pip_command():
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        if shutil.which(name):
            return [shutil.which(name)]
    raise BenchError("no pip found (python3 -m pip, pip3, pip) to download the llama-cpp-python sdist")


def fetch_sdist(cache, version, timeout):
    """Downloads (once) and unpacks llama-cpp-python's sdist; returns the unpacked root."""
    root = cache / f"llama_cpp_python-{version}"
    if (root / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        return root
    tarball = cache / f"llama_cpp_python-{version}.tar.gz"
    if not tarball.is_file():
        log(f"downloading the llama-cpp-python {version} sdist (~77 MB) into {cache}")
        run(pip_command() + ["download", "--no-binary", ":all:", "--no-deps", "--no-input",
                             "--disable-pip-version-check", "-d", cache,
                             f"llama-cpp-python=={version}"],
            timeout, what="pip download llama-cpp-python")
        if not tarball.is_file():
            raise BenchError(f"pip download did not leave {tarball}")
    log(f"unpacking {tarball.name}")
    tmp = cache / f".unpack-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:
            tar.extractall(tmp)
    (tmp / root.name).rename(root)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def vendored_commit(sdist_root, version):
    """{commit, commit_date, source} of the llama.cpp the sdist vendors: from the one-commit git
    copy the sdist carries for its submodule, else from the changelog line of its version."""
    src = sdist_root / "vendor" / "llama.cpp"
    if (src / ".git").exists():
        try:
            rc, out, _ = run(["git", "-C", src, "log", "-1", "--format=%H %cI"], 30, what="git log",
                             check=False)
            if rc == 0 and re.match(r"[0-9a-f]{40} ", out):
                commit, date = out.split()[:2]
                return {"commit": commit, "commit_date": date, "source": "vendor/llama.cpp git"}
        except (BenchError, OSError):
            pass
    try:
        text = (sdist_root / "CHANGELOG.md").read_text(encoding="utf-8")
    except OSError:
        return {"commit": None}
    section = re.search(r"^## \[" + re.escape(version) + r"\](.*?)(?=^## \[|\Z)", text, re.M | re.S)
    m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section.group(1) if section else "")
    return {"commit": m.group(1) if m else None, "source": "CHANGELOG.md"}


def build_llamacpp(cache, sdist_root, version, commit, jobs, timeout):
    """Builds llama-bench and llama-batched-bench (once); returns (paths, info)."""
    build = cache / f"build-{version}"
    bins = {t: build / "bin" / t for t in LLAMA_TARGETS}
    info = {"build_dir": str(build)}
    if all(os.access(p, os.X_OK) for p in bins.values()):
        info["reused"] = True
        return bins, info
    src = sdist_root / "vendor" / "llama.cpp"
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
             "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
             "-DLLAMA_BUILD_APP=OFF", "-DBUILD_SHARED_LIBS=OFF"]
    if commit:
        flags.append(f"-DLLAMA_BUILD_COMMIT={commit[:9]}")  # also when the sdist carries no git
    t0 = time.monotonic()
    log(f"building llama.cpp ({', '.join(LLAMA_TARGETS)}) in {build} with -j{jobs}; "
        "on 2 cores this takes a while (log: build.log there)")
    build.mkdir(parents=True, exist_ok=True)
    run(["cmake", "-S", src, "-B", build] + flags, 600, what="cmake configure (llama.cpp)",
        log_file=build / "configure.log")
    run(["cmake", "--build", build, "--target", *LLAMA_TARGETS, f"-j{jobs}"], timeout,
        what="cmake --build (llama.cpp)", log_file=build / "build.log")
    info.update(reused=False, build_seconds=round(time.monotonic() - t0, 1), cmake_flags=flags)
    missing = [t for t, p in bins.items() if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError(f"the llama.cpp build did not produce {missing} (see {build}/build.log)")
    return bins, info


# ---------------------------------------------------------------------------------------------
# The model: what the checkpoint holds, and its GGUF conversions.


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def model_info(model_dir):
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise BenchError(f"{model_dir}: no config.json (want a Hugging Face model directory)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise BenchError(f"{model_dir}: no *.safetensors")
    dtypes, params, nbytes = {}, 0, 0
    for f in files:
        for name, t in read_safetensors_header(f).items():
            if name == "__metadata__":
                continue
            n = 1
            for d in t["shape"]:
                n *= d
            params += n
            nbytes += t["data_offsets"][1] - t["data_offsets"][0]
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + n
    main_dtype = max(dtypes, key=dtypes.get)
    outtype = {"BF16": "bf16", "F16": "f16", "F32": "f32"}.get(main_dtype)
    if outtype is None:
        raise BenchError(f"{model_dir}: weights are mostly {main_dtype}; want bf16, f16 or f32")
    return {"dir": str(model_dir), "architecture": (cfg.get("architectures") or ["?"])[0],
            "dtype": outtype, "safetensors_dtypes": sorted(dtypes), "params": params,
            "weight_bytes": nbytes, "vocab_size": cfg.get("vocab_size"),
            "hidden_size": cfg.get("hidden_size"), "layers": cfg.get("num_hidden_layers"),
            "tokenizer_files": sorted(p.name for p in model_dir.iterdir()
                                      if p.name.startswith("tokenizer") or p.name == "vocab.json")}


def model_key(model_dir):
    """Model dir + the size and mtime of its files: a rewritten checkpoint gets new GGUFs."""
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for p in sorted(model_dir.iterdir()):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def converter_env(python, cache, allow_install, timeout):
    """Environment for the converter; installs the small missing modules into cache/pydeps."""
    pydeps = cache / "pydeps"
    env = dict(os.environ)
    if pydeps.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pydeps), env.get("PYTHONPATH")]))
    mods = list(CONVERTER_REQUIRED) + list(CONVERTER_INSTALLABLE)
    probe = ("import importlib.util, json; print(json.dumps([m for m in %r "
             "if importlib.util.find_spec(m) is None]))" % mods)

    def missing():
        try:
            _, out, _ = run([python, "-c", probe], 120, what=f"{python}: module check", env=env)
        except (BenchError, OSError) as e:
            raise BenchError(f"--python {python} does not run: {e}")
        return json.loads(out.strip().splitlines()[-1])

    gone = missing()
    heavy = [m for m in gone if m in CONVERTER_REQUIRED]
    if heavy:
        raise BenchError(
            f"the GGUF converter (llama.cpp's convert_hf_to_gguf.py) needs {', '.join(heavy)}, "
            f"missing from --python {python}; pass --python with an interpreter that has "
            f"torch, numpy, transformers and safetensors (e.g. /work/refenv2/bin/python)")
    if gone:
        specs = [CONVERTER_INSTALLABLE[m] for m in gone]
        if not allow_install:
            raise BenchError(f"the GGUF converter needs {', '.join(gone)}, missing from {python}; "
                             f"install {' '.join(specs)} (or drop --no-install)")
        log(f"installing {' '.join(specs)} for the converter into {pydeps}")
        run([python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
             "--target", pydeps] + specs, timeout, what="pip install (converter modules)")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pydeps), os.environ.get("PYTHONPATH")]))
        still = missing()
        if still:
            raise BenchError(f"still missing for the converter after installing: {still}")
    return env


def _varint(n):
    n &= (1 << 64) - 1  # negative int32 fields are sign-extended to 64 bits
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _pb_int(field, n):
    return _varint(field << 3) + _varint(n)


def _pb_bytes(field, b):
    return _varint(field << 3 | 2) + _varint(len(b)) + b


def _pb_float(field, x):
    return _varint(field << 3 | 5) + struct.pack("<f", x)


def synthetic_sentencepiece_model(vocab_size):
    """A minimal SentencePiece ModelProto (BPE, byte fallback): <unk>, <s>, </s>, <0x00>..<0xFF>."""
    NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
    pieces = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
    byte_fallback = vocab_size >= len(pieces) + 256 + 1
    if byte_fallback:
        pieces += [(f"<0x{i:02X}>", BYTE) for i in range(256)]
    pieces += [("\u2581", NORMAL)]  # the word-boundary piece
    pieces = pieces[:max(vocab_size, 4)]
    proto = b"".join(_pb_bytes(1, _pb_bytes(1, p.encode()) + _pb_float(2, 0.0) + _pb_int(3, t))
                     for p, t in pieces)
    trainer = (_pb_int(3, 2) + _pb_int(4, len(pieces)) + _pb_int(35, int(byte_fallback)) +
               _pb_int(40, 0) + _pb_int(41, 1) + _pb_int(42, 2) + _pb_int(43, -1))
    normalizer = _pb_bytes(1, b"identity") + _pb_int(3, 1) + _pb_int(4, 0) + _pb_int(5, 1)
    return proto + _pb_bytes(2, trainer) + _pb_bytes(3, normalizer), len(pieces)


def staging_dir(cache, model_dir, key, vocab_size):
    """DIR's config and weights (symlinked) with a generated tokenizer.model instead of DIR's."""
    stage = cache / "stage" / f"{model_dir.name}-{key}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for p in model_dir.iterdir():
        if p.suffix == ".safetensors" or p.name in ("config.json", "generation_config.json",
                                                    "model.safetensors.index.json"):
            (stage / p.name).symlink_to(p.resolve())
    blob, n = synthetic_sentencepiece_model(int(vocab_size))
    (stage / "tokenizer.model").write_bytes(blob)
    return stage, n


def convert_to_gguf(cache, sdist_root, python, env, model_dir, info, outtype, vocab_mode, timeout):
    """Returns (gguf path, record); converts once per (model dir, outtype, sdist version) and
    caches the file (written as .part, renamed when complete)."""
    key = model_key(model_dir)
    converter_version = sdist_root.name.rsplit("-", 1)[-1]  # another converter, another file
    out = cache / "gguf" / f"{model_dir.name}-{key}-{outtype}-lcp{converter_version}.gguf"
    side = out.with_suffix(".json")
    if out.is_file() and side.is_file():
        rec = json.loads(side.read_text())
        rec["reused"] = True
        return out, rec
    out.parent.mkdir(parents=True, exist_ok=True)
    converter = sdist_root / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"
    tmp = out.with_name(out.name + ".part")

    def convert(src):
        try:
            return run([python, converter, src, "--outtype", outtype, "--outfile", tmp], timeout,
                       what=f"convert_hf_to_gguf ({outtype})", env=env, check=False)
        except BaseException:
            tmp.unlink(missing_ok=True)  # no half-written GGUF left behind
            raise

    has_tokenizer = any((model_dir / n).is_file() for n in ("tokenizer.json", "tokenizer.model"))
    vocab = "the model's tokenizer"
    t0 = time.monotonic()
    if vocab_mode == "synthetic" or (vocab_mode == "auto" and not has_tokenizer):
        why = "forced by --vocab synthetic" if vocab_mode == "synthetic" else "the model has no tokenizer"
        vocab = None
    else:
        rc, _, err = convert(model_dir)
        why = None
        if rc != 0:
            tail = err[-6000:]
            vocab_failure = ("set_vocab" in tail or "pre-tokenizer" in tail) and "ModuleNotFoundError" not in tail
            if vocab_mode == "auto" and vocab_failure:
                reason = re.findall(r"^\w*(?:Error|Exception|NotImplementedError)\b.*$", tail, re.M)
                why = "the converter rejected the model's tokenizer: " + (reason[-1] if reason else "set_vocab failed")
                log(why + "; retrying with a generated vocabulary")
            else:
                raise BenchError(f"convert_hf_to_gguf ({outtype}) failed for {model_dir}:\n{tail[-3000:]}")
    if why is not None:
        stage, n = staging_dir(cache, model_dir, key, info["vocab_size"])
        rc, _, err = convert(stage)
        if rc != 0:
            raise BenchError(f"convert_hf_to_gguf ({outtype}) failed on {stage}:\n{err[-3000:]}")
        vocab = (f"generated SentencePiece vocabulary ({n} pieces padded to {info['vocab_size']}; "
                 f"{why}); the benchmarks use random token ids")
    os.replace(tmp, out)
    rec = {"path": str(out), "outtype": outtype, "vocab": vocab,
           "convert_seconds": round(time.monotonic() - t0, 1)}
    rec.update(gguf_summary(out))
    side.write_text(json.dumps(rec, indent=2))
    rec["reused"] = False
    return out, rec


# GGML type id: (name, elements per block, bytes per block)
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
              6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
              10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
              13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
              24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
              28: ("F64", 1, 8), 30: ("BF16", 1, 2)}
GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                11: "<q", 12: "<d"}


def read_gguf(path):
    """(metadata scalars and strings, [(name, dims, type id)]) of a GGUF file; arrays skipped."""
    with open(path, "rb") as f:
        def u(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(u("<Q")).decode("utf-8", "replace")

        def value(vtype):
            if vtype == 8:
                return string()
            if vtype == 9:
                item, count = u("<I"), u("<Q")
                if item in GGUF_SCALARS:
                    f.seek(struct.calcsize(GGUF_SCALARS[item]) * count, 1)
                else:
                    for _ in range(count):
                        value(item)
                return f"[array of {count}]"
            return u(GGUF_SCALARS[vtype])

        if f.read(4) != b"GGUF":
            raise BenchError(f"{path}: not a GGUF file")
        version, n_tensors, n_kv = u("<I"), u("<Q"), u("<Q")
        meta = {"gguf_version": version}
        for _ in range(n_kv):
            key = string()
            meta[key] = value(u("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = string()
            dims = [u("<Q") for _ in range(u("<I"))]
            ttype = u("<I")
            u("<Q")  # offset
            tensors.append((name, dims, ttype))
    return meta, tensors


def gguf_summary(path):
    """Bytes of the GGUF's tensors and of what one decode step reads (every matrix but the
    token embedding, unless it doubles as the output matrix), as ponder's matmul_bytes counts."""
    meta, tensors = read_gguf(path)
    total = per_token = 0
    types = {}
    names = {t[0] for t in tensors}
    for name, dims, ttype in tensors:
        tname, block, block_bytes = GGML_TYPES.get(ttype, (f"type{ttype}", None, None))
        n = 1
        for d in dims:
            n *= d
        if block is None:
            return {"tensor_types": "unknown type %d" % ttype}
        b = n // block * block_bytes
        total += b
        types[tname] = types.get(tname, 0) + 1
        embedding_only = name == "token_embd.weight" and "output.weight" in names
        if len(dims) >= 2 and not embedding_only:
            per_token += b
    return {"file_bytes": os.path.getsize(path), "tensor_bytes": total,
            "decode_bytes_per_token": per_token, "tensor_types": types,
            "file_type": meta.get("general.file_type"),
            "tokenizer_model": meta.get("tokenizer.ggml.model")}


# ---------------------------------------------------------------------------------------------
# One run of each benchmark; each returns tokens/s figures.


def ponder_bench(ponder, model_dir, threads, decode_tokens, timeout, prompt_lengths, batches, extra=()):
    cmd = [ponder, "bench", "--model", model_dir, "--threads", threads,
           "--prompt-lengths", ",".join(map(str, prompt_lengths)),
           "--batches", ",".join(map(str, batches)), "--decode-steps", decode_tokens, *extra]
    _, out, _ = run(cmd, timeout, what="ponder bench")
    j = json.loads(out)
    res = {"probes": j.get("probes", {}), "prefill": {}, "decode": {}, "bytes_per_token": None,
           "params": j.get("params"), "dtype": j.get("dtype"), "precision": j.get("precision"),
           "isa": j.get("isa"), "kv_cache_dtype": j.get("kv_cache_dtype"), "threads": j.get("threads")}
    for p in j.get("prefill", []):
        res["prefill"][p["prompt_tokens"]] = p["tokens_per_s"]
    for d in j.get("decode", []):
        res["decode"][d["batch"]] = d["tokens_per_s"]
        res["bytes_per_token"] = d.get("weight_bytes_per_step", res["bytes_per_token"])
    for k in ("quantize", "weight_dtype", "weights_dtype"):
        if k in j:
            res[k] = j[k]
    return res


def ponder_offline(ponder, model_dir, threads, requests, timeout):
    cmd = [ponder, "bench", "--model", model_dir, "--threads", threads, "--offline",
           "--requests", requests]
    _, out, _ = run(cmd, timeout, what="ponder bench --offline")
    j = json.loads(out)
    return {k: j.get(k) for k in ("requests", "prompt_range", "output_range", "seconds",
                                  "output_tokens_per_s", "total_tokens_per_s", "preemptions")}


def llama_bench(binary, gguf, threads, n_prompt, n_gen, reps, timeout):
    cmd = [binary, "-m", gguf, "-t", threads, "-p", n_prompt, "-n", n_gen, "-r", reps, "-o", "json"]
    _, out, _ = run(cmd, timeout, what="llama-bench")
    rows = json.loads(out)
    if len(rows) != 1:
        raise BenchError(f"llama-bench printed {len(rows)} results, expected 1")
    return rows[0]


def llama_batched_bench(binary, gguf, threads, n_new, timeout):
    pl, pp = BATCHED_SEQUENCES, BATCHED_PROMPT
    ctx = (pl * (pp + n_new) + 255) // 256 * 256  # batched-bench silently skips a test that does not fit
    cmd = [binary, "-m", gguf, "-t", threads, "-tb", threads, "-c", ctx, "-b", 2048, "-ub", 512,
           "-npp", pp, "-ntg", n_new, "-npl", pl, "--output-format", "jsonl"]
    _, out, err = run(cmd, timeout, what="llama-batched-bench")
    for line in (out + "\n" + err).splitlines():
        line = line.strip()
        if line.startswith("{") and '"speed_tg"' in line:
            return json.loads(line)
    raise BenchError("llama-batched-bench printed no result line (context too small?)")


# ---------------------------------------------------------------------------------------------
# Statistics and the report


def competing_tasks(seconds=1.0, samples=10):
    """Mean number of runnable tasks besides this sampler over `seconds` (/proc/stat)."""
    vals = []
    for _ in range(samples):
        try:
            m = re.search(r"^procs_running (\d+)", Path("/proc/stat").read_text(), re.M)
        except OSError:
            return None
        vals.append(int(m.group(1)) - 1)
        time.sleep(seconds / samples)
    return sum(vals) / len(vals)


def cpu_snapshot():
    """(wall, busy CPU seconds of the whole machine, steal seconds, CPU seconds of this process
    and its finished children)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    t = os.times()
    return (time.monotonic(), (user + nice + system + irq + softirq) / hz, steal / hz,
            t.user + t.system + t.children_user + t.children_system)


def others_share(start, end):
    """Share of the machine's CPU time that other processes used between two snapshots, and the
    share the hypervisor stole."""
    if not start or not end:
        return None
    capacity = (end[0] - start[0]) * (os.cpu_count() or 1)
    others = (end[1] - start[1]) - (end[3] - start[3])
    return {"others": round(max(others, 0.0) / capacity, 3),
            "steal": round((end[2] - start[2]) / capacity, 3)}


def wait_for_idle(max_wait_s):
    """Waits up to max_wait_s for the other tasks to go (< 0.5 runnable); returns the last load."""
    t0 = time.monotonic()
    load = competing_tasks()
    while load is not None and load >= 0.5 and time.monotonic() - t0 < max_wait_s:
        log(f"{load:.1f} other runnable tasks on {os.cpu_count()} CPUs; waiting for idle")
        time.sleep(5)
        load = competing_tasks()
    return load


def stats(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": [round(v, 3) for v in values]}


def ratio(a, b, key):
    if not a or not b or not b[key]:
        return None
    return a[key] / b[key]


def side_by_side(ponder_vals, llama_vals, unit="tokens_per_s"):
    p, l = stats(ponder_vals), stats(llama_vals)
    return {"unit": unit, "ponder": p, "llama_cpp": l,
            "ratio_ponder_over_llama_cpp_median": ratio(p, l, "median"),
            "ratio_ponder_over_llama_cpp_best": ratio(p, l, "max")}


def add_roofline(entry, side, bytes_per_token, bw_GBps):
    s = entry.get(side)
    if not s or not bytes_per_token or not bw_GBps:
        return
    s["bytes_per_token"] = bytes_per_token
    s["fraction_of_roofline_median"] = s["median"] * bytes_per_token / (bw_GBps * 1e9)
    s["fraction_of_roofline_best"] = s["max"] * bytes_per_token / (bw_GBps * 1e9)


def machine_info():
    info = {"cpu_model": None, "logical_cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu_model"] = m.group(1).strip() if m else platform.processor()
        m = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
        flags = set(m.group(1).split()) if m else set()
        info["cpu_flags"] = sorted(f for f in flags if re.match(r"avx2$|avx512(f|bw|_bf16|_vnni|vnni)$|amx|fma$|f16c$", f))
        mem = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        info["mem_total_GB"] = round(int(mem.group(1)) / 1e6, 1) if mem else None
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
        info["transparent_hugepages"] = thp.read_text().strip() if thp.exists() else None
    except OSError:
        pass
    return info


def ponder_info(ponder):
    info = {"binary": str(ponder)}
    try:
        _, help_text, help_err = run([ponder, "bench", "--help"], 60, what="ponder bench --help", check=False)
        info["quantize_int8"] = "--quantize" in (help_text + help_err)
        _, rev, _ = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], 30, what="git", check=False)
        info["git_commit"] = rev.strip() or None
        info["binary_mtime"] = datetime.datetime.fromtimestamp(
            Path(ponder).stat().st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
    except OSError as e:
        raise BenchError(f"cannot run ponder at {ponder}: {e}")
    return info


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring (head of this file) for details.")
    ap.add_argument("--model", required=True, type=Path, help="Hugging Face model directory")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds per figure (default 3)")
    ap.add_argument("--decode-tokens", type=int, default=None,
                    help="tokens per decode measurement, batch 1 and 16 (default 128; --quick 32)")
    ap.add_argument("--quick", action="store_true", help="32 decode tokens, 1 round: a fast check")
    ap.add_argument("--ponder", type=Path, default=REPO / "build" / "release" / "bin" / "ponder")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for convert_hf_to_gguf.py (torch, numpy, transformers, safetensors)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help=f"sdist, build and GGUF cache (default {DEFAULT_CACHE})")
    ap.add_argument("--llama-cpp-python", default=LLAMA_CPP_PYTHON_VERSION, metavar="VERSION",
                    help=f"sdist version to take llama.cpp from (default {LLAMA_CPP_PYTHON_VERSION})")
    ap.add_argument("--jobs", type=int, default=2, help="build parallelism (default 2)")
    ap.add_argument("--vocab", choices=("auto", "model", "synthetic"), default="auto",
                    help="GGUF vocabulary: the model's tokenizer, a generated one, or auto (default: "
                         "the model's when the converter accepts it)")
    ap.add_argument("--no-q8", action="store_true", help="skip the q8_0 conversion and figures")
    ap.add_argument("--offline", action="store_true", help="also ponder bench --offline (ponder only)")
    ap.add_argument("--offline-requests", type=int, default=32)
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip-install missing small converter modules into the cache")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="before each round wait up to S seconds for other processes to go idle "
                         "(default 0: measure the competing load, warn, do not wait)")
    ap.add_argument("--retry-busy", type=int, default=3, metavar="K",
                    help="rerun a round during which other processes used more than 5 %% of the "
                         "CPUs, up to K times per thread count (default 3)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per benchmark process (default 900)")
    ap.add_argument("--build-timeout", type=int, default=5400, help="seconds for the llama.cpp build")
    ap.add_argument("--convert-timeout", type=int, default=3600, help="seconds per GGUF conversion")
    args = ap.parse_args(argv)
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error("--threads: want a comma-separated list of integers")
    if not args.threads or min(args.threads) < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    if args.quick:
        args.repeats = 1
    if args.decode_tokens is None:
        args.decode_tokens = 32 if args.quick else 128
    args.model = args.model.resolve()
    args.cache = args.cache.expanduser().resolve()
    return args


def run_round(args, T, bins, ggufs, int8, runs):
    """One round at T threads: every figure once per system, ponder first; appends to runs."""
    N = args.decode_tokens
    p = ponder_bench(args.ponder, args.model, T, N, args.timeout, [PREFILL_TOKENS],
                     [1, BATCHED_SEQUENCES])
    runs["ponder_prefill"].append(p["prefill"][PREFILL_TOKENS])
    runs["ponder_decode1"].append(p["decode"][1])
    runs["ponder_decode16"].append(p["decode"][BATCHED_SEQUENCES])
    runs["ponder_probes"].append(p["probes"])
    runs["ponder_last"] = p

    row = llama_bench(bins["llama-bench"], ggufs["native"], T, PREFILL_TOKENS, 0, 2, args.timeout)
    runs["llama_prefill"].append(max(row["samples_ts"]))  # best of 2, as ponder's prefill figure
    row = llama_bench(bins["llama-bench"], ggufs["native"], T, 0, N, 1, args.timeout)
    runs["llama_decode1"].append(row["avg_ts"])
    runs["llama_last"] = row
    b = llama_batched_bench(bins["llama-batched-bench"], ggufs["native"], T, N, args.timeout)
    runs["llama_decode16"].append(b["speed_tg"])
    runs["llama_batched_last"] = b

    if int8:
        try:
            q = ponder_bench(args.ponder, args.model, T, N, args.timeout, [128], [1],
                             ["--quantize", "int8"])
            runs["ponder_int8"].append(q["decode"][1])
            runs["ponder_int8_bytes"] = q["bytes_per_token"]
        except BenchError as e:
            log(f"ponder bench --quantize int8 failed; leaving int8 out: {e}")
            runs["int8_error"] = str(e)[:500]
    if "q8_0" in ggufs:
        row = llama_bench(bins["llama-bench"], ggufs["q8_0"], T, 0, N, 1, args.timeout)
        runs["llama_q8_decode1"].append(row["avg_ts"])


BUSY_SHARE = 0.05  # a round during which others used more of the CPUs than this is disturbed


def disturbed(load):
    return load.get("others", 0) > BUSY_SHARE or load.get("steal", 0) > BUSY_SHARE


def bench_threads(args, T, bins, ggufs, gguf_recs, int8):
    """All figures at T threads: --repeats interleaved rounds, then their summary. A round that
    other processes disturbed is run again (up to --retry-busy times per thread count) and its
    figures are left out; if retries run out, the disturbed round is kept and flagged."""
    keys = ("ponder_prefill", "ponder_decode1", "ponder_decode16", "ponder_probes", "ponder_int8",
            "llama_prefill", "llama_decode1", "llama_decode16", "llama_q8_decode1")
    runs = {k: [] for k in keys}
    load, discarded, retries = [], [], args.retry_busy
    while len(load) < args.repeats:
        before = wait_for_idle(args.wait_idle)
        log(f"threads {T}: round {len(load) + 1}/{args.repeats} (other runnable tasks: {before})")
        snap = cpu_snapshot()
        this = {k: [] for k in keys}
        run_round(args, T, bins, ggufs, int8, this)
        if "int8_error" in this:  # no int8 figures at all from here on
            int8 = False
            runs["int8_error"] = this.pop("int8_error")
            runs["ponder_int8"].clear()
            this["ponder_int8"].clear()
        share = dict(others_share(snap, cpu_snapshot()) or {}, runnable_before=before)
        if disturbed(share) and retries > 0:
            retries -= 1
            log(f"threads {T}: others used {share.get('others')} of the CPUs (steal "
                f"{share.get('steal')}); discarding the round and running it again")
            discarded.append(dict(share, ponder_decode1=this["ponder_decode1"],
                                  llama_decode1=this["llama_decode1"]))
            continue
        for k, v in this.items():
            if isinstance(v, list) and k in runs:
                runs[k].extend(v)
            else:
                runs[k] = v
        load.append(share)
    out, meta = summarise(args, T, runs, gguf_recs, load)
    out["discarded_rounds"] = discarded
    return out, meta


def summarise(args, T, runs, gguf_recs, load):
    """The JSON for one thread count from its kept rounds."""
    N = args.decode_tokens
    p_last, l_last, b_last = runs["ponder_last"], runs["llama_last"], runs["llama_batched_last"]
    # The roofline: ponder bench's huge-page read-bandwidth probes at T threads in this run.
    bw_runs = [max(pr.get("read_bw_hugepages_GBps", 0), pr.get("read_bw_hugepages_before_decode_GBps", 0))
               for pr in runs["ponder_probes"]]
    bw = max(bw_runs) if bw_runs else None
    roofline = {"read_bandwidth_GBps": bw,
                "per_ponder_run_GBps": [round(x, 2) for x in bw_runs],
                "read_bw_4k_pages_GBps": stats([pr["read_bw_4k_pages_GBps"] for pr in runs["ponder_probes"]
                                                if "read_bw_4k_pages_GBps" in pr]),
                "what": "best of ponder bench's huge-page read-bandwidth probes at these threads "
                        "(before the run and right before decode) over this run's ponder runs; "
                        "fraction = tokens/s x decode bytes per token / this bandwidth"}
    ponder_bytes = p_last["bytes_per_token"]
    native_bytes = gguf_recs["native"].get("decode_bytes_per_token")
    dec1 = side_by_side(runs["ponder_decode1"], runs["llama_decode1"])
    add_roofline(dec1, "ponder", ponder_bytes, bw)
    add_roofline(dec1, "llama_cpp", native_bytes, bw)
    out = {"threads": T, "roofline": roofline,
           "decode_batch1": dict(dec1, tokens=N, context="ponder: 16-token prompt + N steps; "
                                 "llama-bench tg: N tokens from an empty context"),
           "prefill_512": dict(side_by_side(runs["ponder_prefill"], runs["llama_prefill"]),
                               tokens=PREFILL_TOKENS,
                               measure="best of 2 after a warm-up, in each run, both systems"),
           "decode_batch16": dict(side_by_side(runs["ponder_decode16"], runs["llama_decode16"]),
                                  sequences=BATCHED_SEQUENCES, new_tokens=N,
                                  context=f"ponder: 16-token prompts; llama-batched-bench: "
                                          f"{BATCHED_PROMPT}-token prompts (speed_tg)")}
    if runs["llama_q8_decode1"]:
        q8_bytes = gguf_recs["q8_0"].get("decode_bytes_per_token")
        q8 = side_by_side(runs["ponder_decode1"], runs["llama_q8_decode1"])
        q8["ponder"]["weights"], q8["llama_cpp"]["weights"] = "bf16 (native)", "Q8_0"
        add_roofline(q8, "ponder", ponder_bytes, bw)
        add_roofline(q8, "llama_cpp", q8_bytes, bw)
        out["decode_batch1_8bit"] = q8
        if runs["ponder_int8"]:
            i8 = side_by_side(runs["ponder_int8"], runs["llama_q8_decode1"])
            i8["ponder"]["weights"] = "int8 (ponder bench --quantize int8)"
            i8["llama_cpp"]["weights"] = "Q8_0"
            add_roofline(i8, "ponder", runs.get("ponder_int8_bytes"), bw)
            add_roofline(i8, "llama_cpp", q8_bytes, bw)
            out["decode_batch1_int8_vs_q8_0"] = i8
    if runs.get("int8_error") and not runs["ponder_int8"]:
        out["decode_batch1_int8_vs_q8_0"] = {"error": runs["int8_error"]}
    if args.offline:
        out["ponder_offline"] = ponder_offline(args.ponder, args.model, T, args.offline_requests,
                                               args.timeout)
    out["llama_cpp_settings"] = {k: l_last.get(k) for k in (
        "n_batch", "n_ubatch", "flash_attn", "type_k", "type_v", "use_mmap", "load_mode", "n_threads",
        "repack", "poll", "cpu_strict") if k in l_last}
    out["llama_cpp_settings"]["batched_bench"] = {k: b_last.get(k) for k in (
        "n_kv_max", "n_batch", "n_ubatch", "flash_attn", "pp", "tg", "pl")}
    out["ponder_settings"] = {k: p_last.get(k) for k in ("precision", "isa", "kv_cache_dtype", "threads")}
    out["competing_load_per_round"] = load
    out["competing_load_what"] = ("others: share of all CPUs' time used by processes other than "
                                  "this benchmark during the round; steal: share the hypervisor "
                                  "took; runnable_before: other runnable tasks just before it")
    busy = [i + 1 for i, x in enumerate(load) if disturbed(x)]
    if busy:
        out["warning"] = (f"other processes (or the hypervisor) used more than {BUSY_SHARE:.0%} of "
                          f"the {os.cpu_count()} CPUs during round(s) {busy} (retries used up): "
                          "these figures are unreliable; rerun on an idle machine (--wait-idle S "
                          "waits for one, --retry-busy K reruns disturbed rounds)")
        log(f"threads {T}: " + out["warning"])
    return out, l_last


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    signal.signal(signal.SIGTERM, _on_signal)
    t_start = time.monotonic()
    if not os.access(args.ponder, os.X_OK):
        raise BenchError(f"no ponder binary at {args.ponder} (build it, or pass --ponder)")
    info = model_info(args.model)
    args.cache.mkdir(parents=True, exist_ok=True)

    version = args.llama_cpp_python
    sdist = fetch_sdist(args.cache, version, 900)
    commit = vendored_commit(sdist, version)
    bins, build = build_llamacpp(args.cache, sdist, version, commit["commit"], args.jobs,
                                 args.build_timeout)

    env = converter_env(args.python, args.cache, not args.no_install, 600)
    outtypes = {"native": info["dtype"]}
    if not args.no_q8:
        outtypes["q8_0"] = "q8_0"
    ggufs, gguf_recs = {}, {}
    for name, outtype in outtypes.items():
        ggufs[name], gguf_recs[name] = convert_to_gguf(args.cache, sdist, args.python, env, args.model,
                                                       info, outtype, args.vocab, args.convert_timeout)
    pinfo = ponder_info(args.ponder)
    results, llama_meta = {}, {}
    for T in args.threads:
        results[str(T)], llama_meta = bench_threads(args, T, bins, ggufs, gguf_recs, pinfo["quantize_int8"])
    warnings = [f"threads {T}: {r['warning']}" for T, r in results.items() if "warning" in r]
    if ponder_info(args.ponder)["binary_mtime"] != pinfo["binary_mtime"]:
        warnings.append(f"{args.ponder} was rebuilt during the run: its rounds may mix two builds")

    report = {
        "benchmark": "ponder vs llama.cpp, same weights, interleaved (bench/vs_llamacpp.py)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "model": info,
        "ponder": pinfo,
        "llama_cpp": dict(build, sdist=f"llama-cpp-python=={version}", vendored=commit,
                          build_commit=llama_meta.get("build_commit"),
                          build_number=llama_meta.get("build_number"),
                          build_number_note="the sdist's llama.cpp git is a one-commit copy, so "
                                            "llama.cpp's own bNNNN release number is not known",
                          cpu_info=llama_meta.get("cpu_info"), backends=llama_meta.get("backends"),
                          model_type=llama_meta.get("model_type"),
                          model_n_params=llama_meta.get("model_n_params")),
        "gguf": gguf_recs,
        "settings": {"threads": args.threads, "repeats": args.repeats, "quick": args.quick,
                     "decode_tokens": args.decode_tokens, "prefill_tokens": PREFILL_TOKENS,
                     "batched": {"sequences": BATCHED_SEQUENCES, "llama_prompt_tokens": BATCHED_PROMPT,
                                 "new_tokens": args.decode_tokens},
                     "order": "per round: ponder bench (prefill 512, decode b1 and b16), llama-bench "
                              "pp512, llama-bench tg, llama-batched-bench, [ponder int8], llama-bench "
                              "tg on Q8_0"},
        "results": results,
        "warnings": warnings,
        "wall_seconds": round(time.monotonic() - t_start, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"vs_llamacpp: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("vs_llamacpp: interrupted; stopped its processes", file=sys.stderr)
        sys.exit(130)
    finally:
        stop_all()
