#!/usr/bin/python3
"""Renders the paper's tables and plots from the run logs of reproduce_paper.sh.

Reads RUNS/<protocol>/<dataset>/<model>/[h<hidden>-]s<seed>.log (first line "+ command", a
"RESULT key=value ..." line at the end) and writes OUT/paper/tables.md, OUT/paper/runs.md,
OUT/figures/within_domain_auc.png and OUT/figures/hidden_sweep.png. Cells with no log say
"not measured". Statistics: mean ± population standard deviation over the seeds found. Beside
each measured cell: the paper's value (PAPER below), or n/a where the paper gives none.

reproduce_paper.sh runs it last (`--only=render` runs nothing else); by hand:
  /usr/bin/python3 bench/paper/make_tables.py --runs=build/paper-runs --out=docs
"""
import argparse
import collections
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = ["srn-a", "srn-l", "sn-a", "sn-l", "logistic", "dtw", "fisher-kernel", "fisher-vector"]
NAMES = {"srn-a": "SRN-A", "srn-l": "SRN-L", "sn-a": "SN-A", "sn-l": "SN-L", "logistic": "logistic",
         "dtw": "DTW", "fisher-kernel": "Fisher kernel", "fisher-vector": "Fisher vector"}
DATASETS = ["arabic-digit", "arabic-voice", "svc2004-noforg", "svc2004"]
DATASET_NAMES = {"arabic-digit": "Arabic (digit)", "arabic-voice": "Arabic (voice)",
                 "svc2004-noforg": "SVC2004 without forgeries (paper: MCYT)",
                 "svc2004": "SVC2004 with forgeries (paper: MCYT)"}
# The paper's values, transcribed from ../shared/paper/TABLES.md (Pei, Tax & van der Maaten
# 2016, Tables 1-3, set out there row by row and checked against the paper's text). Nothing here
# is from memory. Our SVC2004 columns take the paper's MCYT rows (MCYT is not public). Not here:
# the Sign data set's values (no counterpart in this repository), Table 3 for SN-A, SN-L,
# logistic and the Fisher models and for MCYT with forgery (the paper ran one-shot only with
# SRN-A, SRN-L and DTW, without forgeries), and Figure 3 (a plot, no numbers).
# Table 2, out-of-domain AUC: one row per data set, columns in the paper's order (that of MODELS).
PAPER_TABLE2 = {
    "arabic-digit": "0.681 0.714 0.768 0.539 0.761 0.725 0.600 0.561",
    "arabic-voice": "0.849 0.788 0.802 0.684 0.730 0.640 0.698 0.630",
    "svc2004-noforg": "0.914 0.920 0.816 0.760 0.824 0.952 0.752 0.844",  # MCYT (without forgery)
    "svc2004": "0.888 0.876 0.828 0.668 0.782 0.894 0.805 0.813",  # MCYT (with forgery)
}
# Table 3, one-shot 1-NN accuracy: SRN-A, SRN-L, DTW.
PAPER_TABLE3 = {
    "arabic-digit": "0.618 0.613 0.801",
    "arabic-voice": "0.273 0.228 0.151",
    "svc2004-noforg": "0.418 0.548 0.913",  # MCYT (without forgery)
}
# {(table, dataset, model): "value"}, table in "table2" / "table3".
PAPER = {("table2", d, m): v for d, row in PAPER_TABLE2.items() for m, v in zip(MODELS, row.split())}
PAPER.update({("table3", d, m): v for d, row in PAPER_TABLE3.items()
              for m, v in zip(["srn-a", "srn-l", "dtw"], row.split())})
# Table 1 (the data sets) and Table 2's class splits, with the data set standing in here.
# Dimensions "13 x 2": 13 features under a window of 2 frames (the paper's section 4.1).
PAPER_TABLE1 = [  # data set, dimensions, classes, samples, length min / mean / max, split, here
    ("Arabic (digit)", "13 x 2", "10", "8800", "3 / 39 / 92", "1-7 / 8-10", "arabic-digit"),
    ("Arabic (voice)", "13 x 2", "88", "8800", "3 / 39 / 92", "1-60 / 61-88", "arabic-voice"),
    ("MCYT (without forgery)", "5 x 3", "100", "2500", "34 / 349 / 1161", "1-70 / 71-100",
     "svc2004-noforg"),
    ("MCYT (with forgery)", "5 x 3", "100", "5000", "34 / 438 / 2687", "1-70 / 71-100", "svc2004"),
    ("Sign", "77 x 2", "19", "760", "40 / 112 / 198", "1-14 / 15-19", None),
]
# What stands in here: the data sets of ../shared/data and the classes their protocols split.
HERE = {"arabic-digit": "Arabic (digit): the same data, digits 1-7 / 8-10",
        "arabic-voice": "Arabic (voice): the same data, speakers 1-60 / 61-88",
        "svc2004-noforg": "SVC2004 Task 2 without forgeries: 40 signers x 20 genuine, "
                          "signers 1-30 / 31-40",
        "svc2004": "SVC2004 Task 2 with forgeries: 40 signers x (20 genuine + 20 forgeries), "
                   "signers 1-30 / 31-40"}
NO_PAPER_VALUE = "n/a"
PROTOCOL_NOTE = (
    "The paper's protocol differs from ours in places: it windows the input frames (2 on Arabic, 3 on "
    "MCYT; the SRN-family models here use 1), tunes hidden units and dropout on validation (here 64 units "
    "and no dropout), takes MCYT's negatives with forgery only from skilled forgeries of the same "
    "signature (here half of the training negatives, and every trial pair in testing), and measures "
    "one-shot accuracy by leave-one-per-class-out validation (here a mean over 10 random draws of one "
    "reference per class).")

LOG = re.compile(r"^(?:h(?P<hidden>\d+)-)?s(?P<seed>\d+)\.log$")
VALIDATION = re.compile(r"best validation AUC (?P<auc>[0-9.]+)")


def parse(runs):
    """Yields dicts: protocol, dataset, model, hidden, seed, command, result (dict), line."""
    for protocol in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        pdir = os.path.join(runs, protocol)
        if protocol == "maps" or not os.path.isdir(pdir):
            continue
        for dataset in sorted(os.listdir(pdir)):
            for model in sorted(os.listdir(os.path.join(pdir, dataset))):
                mdir = os.path.join(pdir, dataset, model)
                for name in sorted(os.listdir(mdir)):
                    m = LOG.match(name)
                    if not m:
                        continue
                    with open(os.path.join(mdir, name)) as f:
                        lines = f.read().splitlines()
                    results = [l for l in lines if l.startswith("RESULT ")]
                    if not results:
                        continue
                    kv = dict(p.split("=", 1) for p in results[-1].split()[1:])
                    train = os.path.join(mdir, name[:-4] + ".train.log")
                    training = []
                    validation = None
                    if os.path.exists(train):
                        with open(train) as f:
                            train_lines = f.read().splitlines()
                        training = [l for l in train_lines if l.startswith(("+ ", "# imported"))]
                        found = [VALIDATION.search(l) for l in train_lines]
                        found = [v for v in found if v]
                        if found:
                            validation = float(found[-1].group("auc"))
                    yield {"training": training, "validation": validation, "protocol": protocol, "dataset": dataset, "model": model,
                           "hidden": int(m.group("hidden")) if m.group("hidden") else None,
                           "seed": int(m.group("seed")),
                           "command": lines[0][2:] if lines and lines[0].startswith("+ ") else "?",
                           "result": kv, "line": results[-1]}


def cell(values):
    if not values:
        return "not measured"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.3f} (1)"
    return f"{mean:.3f} ± {statistics.pstdev(values):.3f} ({len(values)})"


def collect(runs_list, protocol, metric, hidden):
    table = collections.defaultdict(list)
    for r in runs_list:
        if r["protocol"] != protocol or metric not in r["result"]:
            continue
        if r["hidden"] is not None and r["hidden"] != hidden:
            continue
        table[(r["dataset"], r["model"])].append(float(r["result"][metric]))
    return table


def markdown_table(table, key=None):
    """Models by data sets; with key ("table2" / "table3"), a paper column beside each data set."""
    if key:
        head = "| model | " + " | ".join(f"{DATASET_NAMES[d]} srn | paper" for d in DATASETS) + " |"
        sep = "|---|" + "---|---|" * len(DATASETS)
    else:
        head = "| model | " + " | ".join(DATASET_NAMES[d] for d in DATASETS) + " |"
        sep = "|---|" + "---|" * len(DATASETS)
    rows = [head, sep]
    for m in MODELS:
        cells = []
        for d in DATASETS:
            cells.append(cell(table.get((d, m), [])))
            if key:
                cells.append(PAPER.get((key, d, m), NO_PAPER_VALUE))
        rows.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def table1():
    rows = ["| data set (paper) | dimensions | classes | samples | length min / mean / max | "
            "training / test classes | used here |", "|---|---|---|---|---|---|---|"]
    for name, dims, classes, samples, lengths, split, here in PAPER_TABLE1:
        rows.append(f"| {name} | {dims} | {classes} | {samples} | {lengths} | {split} | "
                    f"{HERE[here] if here else 'nothing (not public)'} |")
    return "\n".join(rows)


def within_plot(table, path):
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(MODELS)
    for i, m in enumerate(MODELS):
        xs, ys, es = [], [], []
        for j, d in enumerate(DATASETS):
            v = table.get((d, m), [])
            if v:
                xs.append(j + i * width)
                ys.append(statistics.fmean(v))
                es.append(statistics.pstdev(v) if len(v) > 1 else 0)
        if xs:
            ax.bar(xs, ys, width, yerr=es, label=NAMES[m])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(DATASETS))])
    ax.set_xticklabels([DATASET_NAMES[d].replace(" (paper: MCYT)", "") for d in DATASETS], fontsize=8)
    ax.set_ylabel("within-domain AUC")
    ax.set_ylim(0.4, 1.0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=4)
    ax.set_title("Within-domain AUC (paper Figure 3); bars absent = not measured")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(runs_list, dataset):
    out = collections.defaultdict(dict)
    for r in runs_list:
        if (r["protocol"] == "out-of-domain" and r["dataset"] == dataset and r["hidden"] is not None
                and r["seed"] == 1 and "auc" in r["result"]):
            out[r["model"]][r["hidden"]] = float(r["result"]["auc"])
    return out


def tuned(runs_list, datasets):
    """Per (dataset, model): the seed-1 out-of-domain run whose hidden-unit count has the best
    validation AUC (the paper's tuning), as (hidden, validation AUC, test AUC, one-shot)."""
    best = {}
    for r in runs_list:
        if (r["protocol"] != "out-of-domain" or r["hidden"] is None or r["seed"] != 1
                or r["validation"] is None or r["dataset"] not in datasets or "auc" not in r["result"]):
            continue
        key = (r["dataset"], r["model"])
        if key not in best or r["validation"] > best[key][1]:
            best[key] = (r["hidden"], r["validation"], float(r["result"]["auc"]),
                         float(r["result"].get("oneshot", "nan")))
    return best


def sweep_plot(per_dataset, path):
    """One panel per dataset with sweep data: AUC against hidden units per model."""
    datasets = [d for d, data in per_dataset.items() if data] or ["arabic-voice"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        data = per_dataset.get(dataset, {})
        for m in ["srn-a", "srn-l", "sn-a", "sn-l"]:
            if m in data:
                hs = sorted(data[m])
                ax.plot(hs, [data[m][h] for h in hs], marker="o", label=NAMES[m])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden units")
        ax.set_ylabel("out-of-domain AUC (seed 1)")
        ax.set_title(dataset)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("AUC against hidden units (paper Figure 2)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--sweep_datasets", default="arabic-voice arabic-digit svc2004 svc2004-noforg",
                    help="space-separated datasets of Figure 2")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    runs_list = list(parse(a.runs))
    os.makedirs(os.path.join(a.out, "paper"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "figures"), exist_ok=True)
    banner = ("**QUICK MODE: short training, sampled pairs; these numbers only check the pipeline.**\n\n"
              if a.quick else "")
    md = [f"# Paper tables (generated by bench/paper/reproduce_paper.sh; do not edit)\n\n{banner}"
          f"Mean ± population standard deviation over the seeds measured (their number in brackets). "
          f"SRN-family models: {a.hidden} hidden units. \"paper\": the paper's value, from "
          f"../shared/paper/TABLES.md (its MCYT rows beside SVC2004); n/a = the paper gives none. "
          f"Every command and RESULT line: runs.md.\n"]
    md.append("## Table 1: the data sets (the paper's values) and what stands in for them here\n\n" +
              table1() + "\n\n" + PROTOCOL_NOTE + "\n")
    md.append("## Table 2: out-of-domain AUC\n\n" +
              markdown_table(collect(runs_list, "out-of-domain", "auc", a.hidden), "table2") + "\n")
    md.append("## Table 3: one-shot accuracy (out-of-domain test classes)\n\n" +
              markdown_table(collect(runs_list, "out-of-domain", "oneshot", a.hidden), "table3") + "\n")
    within = collect(runs_list, "within-domain", "auc", a.hidden)
    md.append("## Figure 3: within-domain AUC\n\n![within-domain AUC](../figures/within_domain_auc.png)\n\n"
              "The paper gives Figure 3 as a plot only, so this table has no paper column.\n\n" +
              markdown_table(within) + "\n")
    within_plot(within, os.path.join(a.out, "figures", "within_domain_auc.png"))
    per_dataset = {d: sweep(runs_list, d) for d in a.sweep_datasets.split()}
    hs = sorted({h for sw in per_dataset.values() for m in sw.values() for h in m})
    lines = ["## Figure 2: AUC against hidden units (out of domain, seed 1)\n",
             "![hidden-unit sweep](../figures/hidden_sweep.png)\n",
             "| dataset | model | " + " | ".join(f"h={h}" for h in hs) + " |", "|---|---|" + "---|" * len(hs)]
    for dataset, sw in per_dataset.items():
        for m in ["srn-a", "srn-l", "sn-a", "sn-l"]:
            lines.append(f"| {dataset} | {NAMES[m]} | " + " | ".join(
                f"{sw[m][h]:.3f}" if h in sw.get(m, {}) else "not measured" for h in hs) + " |")
    md.append("\n".join(lines) + "\n")
    sweep_plot(per_dataset, os.path.join(a.out, "figures", "hidden_sweep.png"))
    chosen = tuned(runs_list, a.sweep_datasets.split())
    lines = ["## Hidden units chosen on validation (seed 1)\n",
             "For each dataset and model, the sweep run (Figure 2) with the best validation AUC (held-out "
             "training classes, never test classes), as the paper tunes them, and that run's test figures. "
             "One seed: the five-seed tables above use 64 units throughout. \"paper\": Tables 2 and 3 "
             "(means over five repetitions, widths tuned on validation).\n",
             "| dataset | model | hidden units | validation AUC | out-of-domain AUC | paper | one-shot "
             "| paper |",
             "|---|---|---|---|---|---|---|---|"]
    for dataset in a.sweep_datasets.split():
        for m in ["srn-a", "srn-l", "sn-a", "sn-l"]:
            p2 = PAPER.get(("table2", dataset, m), NO_PAPER_VALUE)
            p3 = PAPER.get(("table3", dataset, m), NO_PAPER_VALUE)
            if (dataset, m) in chosen:
                h, v, auc, one = chosen[(dataset, m)]
                lines.append(f"| {dataset} | {NAMES[m]} | {h} | {v:.3f} | {auc:.3f} | {p2} | {one:.3f} "
                             f"| {p3} |")
            else:
                lines.append(f"| {dataset} | {NAMES[m]} | not measured | | | {p2} | | {p3} |")
    md.append("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "paper", "tables.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(a.out, "paper", "runs.md"), "w") as f:
        f.write(f"# Every run behind tables.md\n\n{banner}")
        for r in sorted(runs_list, key=lambda r: (r["protocol"], r["dataset"], MODELS.index(r["model"])
                                                  if r["model"] in MODELS else 99, r["hidden"] or 0, r["seed"])):
            train = "".join((l[2:] if l.startswith("+ ") else l) + "\n" for l in r["training"])
            # Weights files by name: the folder they were written to was one machine's.
            text = re.sub(r"(?<![\w.])/[^\s`'\"]*/([^/\s`'\"]+\.srnw)", r"\1",
                          f"{train}{r['command']}")
            f.write(f"```sh\n{text}\n# {r['line']}\n```\n\n")


if __name__ == "__main__":
    main()
