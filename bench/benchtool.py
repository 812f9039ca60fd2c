"""Helpers for bench/load.sh (Debian's /usr/bin/python3, standard library + numpy + PIL).

  digits  MNIST_DIR OUT_DIR N          write N test digits as 28x28 grey PNGs
  multipart PNG BOUNDARY OUT           write a multipart/form-data body with field img
  fetch-refs URL DIGIT_DIR OUT_DIR     from the Go server: reference denoise PNGs and latents
  check URL DIGIT_DIR REF_DIR          a server's outputs against the references (±1 grey level)
  load-parse FILE                      one wrk or hey report -> JSON {rps, p50_ms, p99_ms, non2xx, errors, ...}
  record RAW SERVER SCENARIO CONNS CPU_TICKS HZ HWM_KIB RESULTS TIMES0 TIMES1   append one measurement
  meta OUT LOADAVG DURATION WARMUP GIT CHECKS_DIR RSS_DIR        write meta.json
  table RESULTS_JSONL META_JSON        the markdown report
"""

import gzip
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

BOUNDARY = "aeservebench7d1f0c"


# ---------------------------------------------------------------- inputs


def cmd_digits(mnist_dir, out_dir, n):
    """The first n images of MNIST's test set, as the server's contract wants them."""
    n = int(n)
    os.makedirs(out_dir, exist_ok=True)
    with gzip.open(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")) as f:
        b = f.read(16 + n * 784)
    if int.from_bytes(b[:4], "big") != 0x803:
        sys.exit(f"{mnist_dir}: not an idx3 image file")
    for i in range(n):
        px = np.frombuffer(b, np.uint8, 784, 16 + i * 784).reshape(28, 28)
        Image.fromarray(px, "L").save(os.path.join(out_dir, f"t10k-{i:05d}.png"))


def multipart_body(png, boundary=BOUNDARY):
    return (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"img\"; filename=\"digit.png\"\r\n"
        "Content-Type: image/png\r\n\r\n".encode() + png + f"\r\n--{boundary}--\r\n".encode()
    )


def cmd_multipart(png_path, boundary, out):
    with open(png_path, "rb") as f:
        png = f.read()
    with open(out, "wb") as f:
        f.write(multipart_body(png, boundary))


# ---------------------------------------------------------------- output check


def post(url, body, ctype, accept=None):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"POST {url}: {e.code} {e.read()[:300]!r}")


def pixels(png):
    im = Image.open(io.BytesIO(png))
    if im.size != (28, 28) or im.mode != "L":
        raise SystemExit(f"response is not a 28x28 grey PNG ({im.size}, {im.mode})")
    return np.asarray(im, dtype=np.int16)


def digit_files(digit_dir):
    return sorted(f for f in os.listdir(digit_dir) if f.endswith(".png"))


def cmd_fetch_refs(url, digit_dir, out_dir):
    """Reference outputs from the Go server: denoised PNG and binary latent per digit,
    and the decode of that latent."""
    os.makedirs(out_dir, exist_ok=True)
    for name in digit_files(digit_dir):
        with open(os.path.join(digit_dir, name), "rb") as f:
            png = f.read()
        stem = name[:-4]
        out = post(f"{url}/v1/denoise", png, "image/png")
        lat = post(f"{url}/v1/encode?model=denoise", png, "image/png", accept="application/octet-stream")
        dec = post(f"{url}/v1/decode", lat, "application/octet-stream")
        for suffix, data in (("denoise.png", out), ("latent.bin", lat), ("decode.png", dec)):
            with open(os.path.join(out_dir, f"{stem}.{suffix}"), "wb") as f:
                f.write(data)


def cmd_check(url, digit_dir, ref_dir):
    """Max |Δ| in grey levels between this server's outputs and the Go server's, over every
    digit, for multipart and raw /v1/denoise and for /v1/decode. Exit 1 if any is > 1."""
    worst = {"denoise multipart": 0, "denoise raw": 0, "decode": 0}
    distinct = set()
    names = digit_files(digit_dir)
    for name in names:
        stem = name[:-4]
        with open(os.path.join(digit_dir, name), "rb") as f:
            png = f.read()
        with open(os.path.join(ref_dir, f"{stem}.denoise.png"), "rb") as f:
            ref = pixels(f.read())
        with open(os.path.join(ref_dir, f"{stem}.decode.png"), "rb") as f:
            ref_dec = pixels(f.read())
        with open(os.path.join(ref_dir, f"{stem}.latent.bin"), "rb") as f:
            lat = f.read()
        mp = pixels(post(f"{url}/v1/denoise", multipart_body(png), f"multipart/form-data; boundary={BOUNDARY}"))
        raw = pixels(post(f"{url}/v1/denoise", png, "image/png"))
        dec = pixels(post(f"{url}/v1/decode", lat, "application/octet-stream"))
        worst["denoise multipart"] = max(worst["denoise multipart"], int(np.abs(mp - ref).max()))
        worst["denoise raw"] = max(worst["denoise raw"], int(np.abs(raw - ref).max()))
        worst["decode"] = max(worst["decode"], int(np.abs(dec - ref_dec).max()))
        distinct.add(ref.tobytes())
    ok = max(worst.values()) <= 1
    print(json.dumps({"url": url, "digits": len(names), "distinct_reference_outputs": len(distinct),
                      "max_abs_diff_grey_levels": worst, "ok": ok}))
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------- load generator output


def load_parse(path):
    """One cell's report, from wrk (the WRK-JSON line bench/loadgen/post.lua prints) or hey."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^WRK-JSON (\{.*\})$", text, re.M)
    if m:
        return wrk_parse(json.loads(m.group(1)))
    if text.startswith("Running "):
        raise SystemExit(f"{path}: a wrk report without the WRK-JSON line (was bench/loadgen/post.lua used?)")
    return hey_parse(text)


def wrk_parse(j):
    total_s = j["duration_us"] / 1e6
    return {
        "rps": j["requests"] / total_s if total_s else None,
        "total_s": total_s,
        "p50_ms": j["p50_us"] / 1000,
        "p99_ms": j["p99_us"] / 1000,
        "responses": j["requests"],
        "non2xx": j["non2xx"],
        "errors": j["errors"],
        "codes": {},
    }


def hey_parse(text):
    def secs(pat):
        m = re.search(pat, text)
        return float(m.group(1)) if m else None

    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    errs = 0
    if "Error distribution:" in text:
        errs = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+\D", text.split("Error distribution:")[1], re.M))
    p50, p99 = secs(r"50% in ([\d.]+) secs"), secs(r"99% in ([\d.]+) secs")
    return {
        "rps": secs(r"Requests/sec:\s+([\d.]+)"),
        "total_s": secs(r"Total:\s+([\d.]+) secs"),
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
        "responses": sum(codes.values()),
        "non2xx": sum(n for c, n in codes.items() if not 200 <= c < 300),
        "errors": errs,
        "codes": codes,
    }


def cmd_load_parse(path):
    print(json.dumps(load_parse(path)))


def children_cpu_s(times_file):
    """User + system seconds of waited-for children, from bash's `times` output (line 2)."""
    with open(times_file) as f:
        line = f.read().splitlines()[1]
    return sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", line))


def cmd_record(raw, server, scenario, conns, cpu_ticks, hz, hwm_kib, results, times0, times1):
    """Appends one measurement (the load generator's report, server CPU and VmHWM, the
    generator's CPU) to RESULTS (JSON lines) and prints a one-line summary."""
    r = load_parse(raw)
    cpu_s = int(cpu_ticks) / int(hz)
    r.update(server=server, scenario=scenario, conns=int(conns), vm_hwm_kib=int(hwm_kib), cpu_s=cpu_s,
             cpu_ms_per_req=1000 * cpu_s / r["responses"] if r["responses"] else None,
             hey_cpu_s=children_cpu_s(times1) - children_cpu_s(times0))
    with open(results, "a") as f:
        f.write(json.dumps(r) + "\n")
    if r["rps"] is None or r["p50_ms"] is None:
        print(f"{server:8} {scenario:18} c={conns:<3} no result, see {raw}")
        return
    print(f"{server:8} {scenario:18} c={conns:<3} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
          f"p99 {r['p99_ms']:7.1f} ms  errors {r['non2xx'] + r['errors']}  "
          f"CPU: server {cpu_s / r['total_s']:.2f}, load generator {r['hey_cpu_s'] / r['total_s']:.2f} cores  "
          f"HWM {int(hwm_kib) // 1024} MiB")


def cmd_meta(out, loadavg, duration, warmup, git, checks_dir, rss_dir):
    """meta.json: the run's machine, settings, versions, peak RSS and output checks.
    Versions come from the environment (VERSION_*)."""
    meta = {
        "run": os.path.basename(os.path.dirname(os.path.abspath(out))),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "loadavg_before": loadavg, "duration": duration, "warmup": warmup, "git": git,
        "versions": {k[len("VERSION_"):].lower().replace("_", "-"): v
                     for k, v in sorted(os.environ.items()) if k.startswith("VERSION_")},
        "settings": {k[len("SETTING_"):].lower(): v for k, v in sorted(os.environ.items()) if k.startswith("SETTING_")},
        "rss": {}, "check": {},
    }
    for name in sorted(os.listdir(rss_dir)) if os.path.isdir(rss_dir) else []:
        meta["rss"][name] = int(open(os.path.join(rss_dir, name)).read())
    for name in sorted(os.listdir(checks_dir)) if os.path.isdir(checks_dir) else []:
        meta["check"][name[:-5]] = json.load(open(os.path.join(checks_dir, name)))
    with open(out, "w") as f:
        json.dump(meta, f, indent=2)


# ---------------------------------------------------------------- report

SERVERS = [("go", "Go (aeserve)"), ("fastapi", "FastAPI + PyTorch"), ("node", "Node + ONNX Runtime")]
SCENARIOS = [("denoise-multipart", "`/v1/denoise` multipart"), ("denoise-raw", "`/v1/denoise` raw image/png"),
             ("decode", "`/v1/decode` binary latent")]


def fmt_rps(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    return "–" if v is None else f"{v:.1f}"


def cmd_table(results_path, meta_path):
    with open(meta_path) as f:
        meta = json.load(f)
    res = {}
    with open(results_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                res[(r["server"], r["scenario"], r["conns"])] = r
    conns = sorted({k[2] for k in res})
    present = [s for s in SERVERS if any(k[0] == s[0] for k in res)]
    out = []
    w = out.append
    w(f"Run {meta['run']} · {meta['date']} · {meta['nproc']} × {meta['cpu']} · load average before: {meta['loadavg_before']}")
    st = meta.get("settings", {})
    gen = st.get("loadgen", "hey")
    cell = f"wrk -d {meta['duration']} -c N -t min(N,2) --timeout 20s" if gen == "wrk" else f"hey -z {meta['duration']} -c N"
    w(f"· each cell: {cell} after a {meta['warmup']} warm-up at the same concurrency, keep-alive, one 28×28 digit per request")
    w(f"· aeserve {meta['git']}, default flags but `--log-level warn`: access logs off on all three servers")
    w(f"· FastAPI: 1 uvicorn worker, torch threads {st.get('torch_threads', '?')}, inference in the thread pool; "
      f"Node: ONNX Runtime intra-op threads {st.get('node_threads', '?')}, one session.run per request")
    v = meta.get("versions", {})
    w("· " + ", ".join(f"{k} {val}" for k, val in v.items()))
    w("")
    head = "| request | conns |"
    rule = "| --- | ---: |"
    for _, label in present:
        head += f" {label} req/s | p50 ms | p99 ms | errors |"
        rule += " ---: | ---: | ---: | ---: |"
    ratio_cols = [s for s in present if s[0] != "go"] if any(s[0] == "go" for s in present) else []
    for key, label in ratio_cols:
        head += f" Go/{label.split(' ')[0]} req/s |"
        rule += " ---: |"
    w(head)
    w(rule)
    for sc, sc_label in SCENARIOS:
        if not any(k[1] == sc for k in res):
            continue
        for c in conns:
            row = f"| {sc_label} | {c} |"
            for key, _ in present:
                r = res.get((key, sc, c))
                if r is None:
                    row += " – | – | – | – |"
                    continue
                row += f" {fmt_rps(r['rps'])} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {r['non2xx'] + r['errors']} |"
            g = res.get(("go", sc, c))
            for key, _ in ratio_cols:
                p = res.get((key, sc, c))
                if g and p and g["rps"] and p["rps"]:
                    row += f" {g['rps'] / p['rps']:.2f}× |"
                else:
                    row += " – |"
            w(row)
    w("")
    w(f"errors = non-2xx responses + transport errors reported by {gen}. " +
      ("wrk measures latencies to the microsecond." if gen == "wrk" else "hey prints latencies to 0.1 ms."))
    w("")
    cmax = max(conns)
    w(f"| server | peak RSS (VmHWM) | server CPU per request, ms ({' / '.join(map(str, conns))} conns) "
      f"| cores busy at {cmax} conns: server + {gen} | output vs Go (max grey-level diff) |")
    w("| --- | ---: | ---: | ---: | --- |")
    for key, label in present:
        rss = meta.get("rss", {}).get(key)
        sc0 = next((sc for sc, _ in SCENARIOS if (key, sc, cmax) in res), None)
        cpu = []
        for c in conns:
            r = res.get((key, sc0, c))
            cpu.append("–" if not r or r.get("cpu_ms_per_req") is None else f"{r['cpu_ms_per_req']:.2f}")
        r = res.get((key, sc0, cmax))
        busy = "–" if not r or not r.get("total_s") else \
            f"{r['cpu_s'] / r['total_s']:.2f} + {r.get('hey_cpu_s', 0) / r['total_s']:.2f}"
        chk = meta.get("check", {}).get(key)
        if key == "go":
            chk_s = "reference"
        elif chk is None:
            chk_s = "not checked"
        else:
            d = chk["max_abs_diff_grey_levels"]
            chk_s = ("OK" if chk["ok"] else "**MISMATCH**") + f" ({chk['digits']} digits: " + \
                ", ".join(f"{k} {v}" for k, v in d.items()) + ")"
        w(f"| {label} | {'–' if rss is None else f'{rss / 1024:.0f} MiB'} | {' / '.join(cpu)} | {busy} | {chk_s} |")
    w("")
    w("CPU columns: the first scenario measured (denoise multipart in a full run); server CPU from "
      f"/proc/PID/stat (all threads), {gen}'s from the shell's child times; {meta['nproc']} cores in all.")
    print("\n".join(out))


def main():
    cmds = {"digits": cmd_digits, "multipart": cmd_multipart, "fetch-refs": cmd_fetch_refs,
            "check": cmd_check, "load-parse": cmd_load_parse, "record": cmd_record, "meta": cmd_meta,
            "table": cmd_table}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
