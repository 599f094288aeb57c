#!/usr/bin/python3
"""t-SNE maps of the paper's Figures 4 and 5 from files written by srn-eval.

  tsne_maps.py signatures EMBEDDINGS.csv OUT.png
      Figure 4: SVC2004 test signatures (SRN embeddings, srn-eval --embeddings_csv), each drawn as
      its pen trajectory at its t-SNE position; colour = signer, skilled forgeries in grey.
  tsne_maps.py voices EMBEDDINGS.csv DTW_MATRIX.csv OUT.png
      Figure 5: Arabic (voice) test speakers, the SRN embedding map beside a map made from DTW
      distances (srn-eval --model=dtw --dtw_matrix); colour = speaker.

Both CSVs start with the columns index,label,label_name,forgery,group,source; embeddings then
have e0..e(k-1), the DTW matrix d0..d(n-1). t-SNE: scikit-learn, perplexity 30, seed 1.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

META = 6  # index,label,label_name,forgery,group,source


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    body = rows[1:]
    labels = np.array([int(r[1]) for r in body])
    forgery = np.array([r[3] == "1" for r in body])
    sources = [r[5] for r in body]
    values = np.array([[float(x) for x in r[META:]] for r in body])
    return labels, forgery, sources, values


def tsne(values, precomputed=False):
    if precomputed:
        return TSNE(n_components=2, perplexity=30, metric="precomputed", init="random",
                    random_state=1).fit_transform(values)
    return TSNE(n_components=2, perplexity=30, init="pca", random_state=1).fit_transform(values)


def colours(labels):
    uniq = sorted(set(labels))
    cmap = plt.get_cmap("tab20", 20)
    cmap2 = plt.get_cmap("tab20b", 20)
    table = {l: (cmap(i) if i < 20 else cmap2(i - 20)) for i, l in enumerate(uniq)}
    return [table[l] for l in labels]


def pen_trajectory(path):
    """X, Y and pen-down flags of an SVC2004 file (first line N, then X Y T button az alt p)."""
    with open(path) as f:
        lines = f.read().split("\n")[1:]
    pts = [list(map(float, l.split()[:4])) for l in lines if l.strip()]
    a = np.array(pts)
    return a[:, 0], a[:, 1], a[:, 3]


def signatures(emb_path, out):
    labels, forgery, sources, values = read(emb_path)
    xy = tsne(values)
    span = xy.max(axis=0) - xy.min(axis=0)
    box = 0.035 * span.max()
    cols = colours(labels)
    fig, ax = plt.subplots(figsize=(12, 12))
    for i in range(len(labels)):
        x, y, down = pen_trajectory(sources[i])
        w = max(x.max() - x.min(), y.max() - y.min(), 1)
        x = (x - (x.max() + x.min()) / 2) / w * box + xy[i, 0]
        y = (y - (y.max() + y.min()) / 2) / w * box + xy[i, 1]
        colour = (0.6, 0.6, 0.6, 0.6) if forgery[i] else cols[i]
        # Break the line at pen-ups so strokes are not joined.
        xs, ys = x.copy(), y.copy()
        xs[down == 0] = np.nan
        ys[down == 0] = np.nan
        ax.plot(xs, ys, lw=0.6, color=colour)
    ax.set_title("SVC2004 test signers 31-40: t-SNE of SRN-A embeddings (colour = signer, grey = skilled forgery)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def voices(emb_path, dtw_path, out):
    labels, _, _, values = read(emb_path)
    dl, _, _, dist = read(dtw_path)
    if not np.array_equal(labels, dl):
        raise SystemExit("the embedding and DTW files list different test sets")
    dist = (dist + dist.T) / 2  # exact symmetry for scikit-learn
    np.fill_diagonal(dist, 0)
    maps = [("SRN-A embeddings", tsne(values)), ("DTW distances", tsne(np.maximum(dist, 0), precomputed=True))]
    cols = colours(labels)
    fig, axes = plt.subplots(1, 2, figsize=(14, 7))
    for ax, (title, xy) in zip(axes, maps):
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c=cols)
        ax.set_title(f"Arabic (voice) test speakers 61-88: t-SNE of {title}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "signatures":
        signatures(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "voices":
        voices(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
