#!/usr/bin/python3
"""Plots DET curves written by `srn-eval --protocol=svc2004-cv --det_csv=...`.

Usage: bench/plot_det.py OUT.png curves.csv [curves.csv ...]

Each CSV has the columns model,kind,refs,threshold,far,frr (kind is skilled or random). One panel
per forgery kind; one line per (model, refs). Axes are on the normal-deviate scale usual for DET plots.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import norm  # noqa: E402

TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def read(path):
    curves = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["model"], row["kind"], int(row["refs"]))
            curves.setdefault(key, []).append((float(row["far"]), float(row["frr"])))
    return curves


def deviate(p):
    return norm.ppf(min(max(p, 5e-4), 0.5))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = argv[1]
    curves = {}
    for path in argv[2:]:
        curves.update(read(path))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, kind in zip(axes, ["skilled", "random"]):
        for (label, k, refs), points in sorted(curves.items()):
            if k != kind:
                continue
            pts = [(far, frr) for far, frr in points if far <= 0.5 and frr <= 0.5]
            if not pts:
                continue
            ax.plot([deviate(f) for f, _ in pts], [deviate(r) for _, r in pts],
                    label=f"{label}, {refs} ref{'s' if refs > 1 else ''}",
                    ls="-" if refs > 1 else "--")
        ax.plot([deviate(0.0005), deviate(0.5)], [deviate(0.0005), deviate(0.5)], "k:", lw=0.8)
        ticks = [deviate(t) for t in TICKS]
        labels = [f"{100 * t:g}" for t in TICKS]
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.set_xlim(deviate(0.0005), deviate(0.5))
        ax.set_ylim(deviate(0.0005), deviate(0.5))
        ax.set_xlabel("false accept rate (%)")
        ax.set_ylabel("false reject rate (%)")
        ax.set_title(f"SVC2004 4-fold CV, {kind} forgeries (global threshold)")
        ax.grid(True, lw=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
