#!/usr/bin/env python3
"""Turns the result rows of bench/run's parts into the results directory.

Reads rows (see bench/lib/common.sh) from RAW, and writes into OUT:
  samples.csv   every measurement: part,group,metric,unit,run,value
  summary.csv   part,group,metric,unit,n,median,min,max per figure
  targets.csv   each target of the issue, its median and whether it is met
  info.csv      the facts each part recorded (threads, versions, sizes)
  results.json  all of the above plus the machine and the options
  table.txt     the table bench/run prints; table.md the same in Markdown
A figure is the median of its runs (the warm-up is never among them),
with min and max. Ratios are samples of their own, computed by the parts
within each run, so their medians are medians of same-run ratios.
"""
import argparse
import csv
import json
import os
import statistics
import sys


def number(text):
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}" if magnitude >= 0.01 else f"{value:.3g}"


def read_rows(path):
    samples, targets, info, order = [], [], [], []
    seen = set()
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            kind = line.split(",", 1)[0]
            try:
                if kind == "sample":
                    _, part, group, metric, unit, run, value = line.split(",", 6)
                    key = (part, group, metric, unit)
                    if key not in seen:
                        seen.add(key)
                        order.append(key)
                    samples.append((part, group, metric, unit, int(run), number(value)))
                elif kind == "target":
                    _, part, group, metric, op, limit, text = line.split(",", 6)
                    if op not in (">=", "<="):
                        raise ValueError(f"operator {op}")
                    targets.append((part, group, metric, op, number(limit), text))
                elif kind == "info":
                    _, part, key, value = line.split(",", 3)
                    info.append((part, key, value))
                else:
                    raise ValueError(f"row kind {kind}")
            except ValueError as e:
                sys.exit(f"aggregate: {path}:{line_number}: malformed row ({e}): {line}")
    return samples, targets, info, order


def summarize(samples, order):
    values = {}
    for part, group, metric, unit, _, value in samples:
        values.setdefault((part, group, metric, unit), []).append(value)
    summary = []
    for key in order:
        v = values[key]
        summary.append({"part": key[0], "group": key[1], "metric": key[2], "unit": key[3],
                        "n": len(v), "median": statistics.median(v), "min": min(v),
                        "max": max(v)})
    return summary


def check_targets(targets, summary):
    by_key = {(s["part"], s["group"], s["metric"]): s for s in summary}
    out = []
    for part, group, metric, op, limit, text in targets:
        s = by_key.get((part, group, metric))
        entry = {"part": part, "group": group, "metric": metric, "op": op, "limit": limit,
                 "text": text, "median": None, "min": None, "max": None, "n": 0,
                 "status": "not measured"}
        if s:
            met = s["median"] >= limit if op == ">=" else s["median"] <= limit
            entry.update(median=s["median"], min=s["min"], max=s["max"], n=s["n"],
                         status="met" if met else "missed")
        out.append(entry)
    return out


def tables(summary, targets, info, runs):
    text, md = [], []
    parts = []
    for s in summary:
        if s["part"] not in parts:
            parts.append(s["part"])
    for part in parts:
        rows = [s for s in summary if s["part"] == part]
        text.append(f"== {part} (median of {runs} runs after a warm-up; [min, max]) ==")
        width_g = max(len(r["group"]) for r in rows)
        width_m = max(len(r["metric"]) for r in rows)
        for r in rows:
            text.append(f"  {r['group']:<{width_g}}  {r['metric']:<{width_m}}  "
                        f"{fmt(r['median']):>10} {r['unit']:<10} "
                        f"[{fmt(r['min'])}, {fmt(r['max'])}]  n={r['n']}")
        facts = [i for i in info if i[0] == part]
        for _, key, value in facts:
            text.append(f"  - {key}: {value}")
        text.append("")
        md.append(f"### {part}\n")
        md.append("| group | metric | median | unit | min | max | n |")
        md.append("|---|---|---:|---|---:|---:|---:|")
        for r in rows:
            md.append(f"| {r['group']} | {r['metric']} | {fmt(r['median'])} | {r['unit']} | "
                      f"{fmt(r['min'])} | {fmt(r['max'])} | {r['n']} |")
        md.append("")
        for _, key, value in facts:
            md.append(f"- {key}: {value}")
        md.append("")
    if targets:
        text.append("== targets (median against the issue's limit) ==")
        md.append("### targets\n")
        md.append("| part | group | target | median | limit | status |")
        md.append("|---|---|---|---:|---:|---|")
        for t in targets:
            text.append(f"  {t['status'].upper():<12} {t['part']} {t['group']}: {t['metric']} "
                        f"{fmt(t['median'])} {t['op']} {fmt(t['limit'])}  ({t['text']})")
            md.append(f"| {t['part']} | {t['group']} | {t['text']} | {fmt(t['median'])} | "
                      f"{t['op']} {fmt(t['limit'])} | {t['status']} |")
        text.append("")
        md.append("")
    return "\n".join(text), "\n".join(md)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--machine", required=True, help="JSON file describing the machine")
    parser.add_argument("--config", required=True, help="JSON file with bench/run's options")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    samples, targets, info, order = read_rows(args.raw)
    summary = summarize(samples, order)
    checked = check_targets(targets, summary)
    with open(args.machine, encoding="utf-8") as f:
        machine = json.load(f)
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)

    def write_csv(name, header, rows):
        with open(os.path.join(args.out, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write_csv("samples.csv", ["part", "group", "metric", "unit", "run", "value"], samples)
    write_csv("summary.csv", ["part", "group", "metric", "unit", "n", "median", "min", "max"],
              [[s[k] for k in ("part", "group", "metric", "unit", "n", "median", "min", "max")]
               for s in summary])
    write_csv("targets.csv", ["part", "group", "metric", "op", "limit", "median", "min", "max",
                              "n", "status", "text"],
              [[t[k] for k in ("part", "group", "metric", "op", "limit", "median", "min", "max",
                               "n", "status", "text")] for t in checked])
    write_csv("info.csv", ["part", "key", "value"], info)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "config": config, "summary": summary,
                   "targets": checked,
                   "info": [{"part": p, "key": k, "value": v} for p, k, v in info],
                   "samples": [dict(zip(("part", "group", "metric", "unit", "run", "value"), s))
                               for s in samples]}, f, indent=2)
        f.write("\n")
    text, md = tables(summary, checked, info, config.get("runs"))
    with open(os.path.join(args.out, "table.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "table.md"), "w", encoding="utf-8") as f:
        f.write(md + "\n")
    print(text)


if __name__ == "__main__":
    main()
