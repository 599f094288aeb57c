#!/usr/bin/python3
"""PyTorch peer of bench/model_bench.cc: the same models, shapes and batches in idiomatic PyTorch.

Run with the system interpreter (it has torch; another python3 on PATH may not):

    /usr/bin/python3 bench/torch_peer.py [--threads 2] [--min-time 1] [--repetitions 3]
                                         [--filter srn-a/arabic] [--json out.json]
                                         [--layouts packed,padded] [--no-gemm-check]

bench/run_model_bench.sh runs it beside the C++ benchmark and compares. Rows are named like the
C++ benchmarks, <family>/<shape>/<metric>:

  embed_batch1    one series of the shape's length, (1 x T x D), no padding. Items: series.
  embed_batch256  256 series of varying length. Items: series.
  train_batch50   one optimisation step on 50 pairs over 100 distinct series: encoder, head
                  sigmoid(v . (h1 * h2) + c), BCE with logits (mean over pairs), backward,
                  elementwise gradient clipping at 5, RMSprop (lr 1e-3, alpha 0.9, eps 1e-6),
                  as model/train/trainer.cc does. Items: pairs.

The peer is meant to be as fast as idiomatic PyTorch gets, not a straw man:
  * the encoder is torch.nn.RNN(nonlinearity='relu') / torch.nn.GRU (PyTorch's own fused loop),
    batch_first, mean pooling over each series' valid frames;
  * embedding runs under torch.inference_mode();
  * variable lengths are handled two ways, and the faster one counts: "packed"
    (pack_padded_sequence, no work on padding, like the C++ packed batch) and "padded" (the RNN
    runs over the zero padding too and a mask drops those frames from the mean; more flops but
    no per-step bookkeeping). Each row says which one won;
  * batches are padded into one tensor once, outside the timed region (the C++ side packs its
    batch inside the timed call), and the series lengths are exactly the C++ ones (same
    SplitMix64 stream);
  * the matrix products run in whatever libblas.so.3 torch loads; the script first prints which
    one and its GEMM rate. Debian's torch on the reference BLAS is 20x slower at GEMM than with
    OpenBLAS: run_model_bench.sh's FAST_BLAS_DIR runs the peer with an optimized one too;
  * every row is warmed up first, then timed for at least --min-time seconds per repetition;
    the median over --repetitions is reported, as run_model_bench.sh asks of Google Benchmark.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import rnn as rnn_utils

# (name, inputs, hidden, frames): keep in step with kShapes in bench/model_bench.cc.
SHAPES = [("arabic", 26, 64, 40), ("signature", 15, 128, 350)]
EMBED_BATCH = 256
TRAIN_PAIRS = 50
TRAIN_SERIES = 2 * TRAIN_PAIRS
TRAIN_BATCHES = 4
RESET_EVERY = 100
MASK64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def series_length(frames, stream, index):
    """SeriesLength of bench/model_bench.cc: uniform in [3/4, 5/4] of `frames`."""
    lo, hi = frames * 3 // 4, frames * 5 // 4
    return lo + splitmix64((stream * 1000003 + index) & MASK64) % (hi - lo + 1)


def random_batch(frames, inputs, stream, n):
    """(padded (n x T_max x D) tensor, lengths), longest first like the C++ packed batch."""
    gen = torch.Generator().manual_seed(stream)
    lengths = [series_length(frames, stream, i) for i in range(n)]
    series = [torch.randn(t, inputs, generator=gen) for t in lengths]
    order = sorted(range(n), key=lambda i: -lengths[i])
    padded = rnn_utils.pad_sequence([series[i] for i in order], batch_first=True)
    return padded.contiguous(), torch.tensor([lengths[i] for i in order])


class Siamese(nn.Module):
    """Encoder (one recurrent layer, mean pooling) and head sigmoid(v . (h1 * h2) + c)."""

    def __init__(self, cell, inputs, hidden):
        super().__init__()
        if cell == "srn":
            self.rnn = nn.RNN(inputs, hidden, nonlinearity="relu", batch_first=True)
        else:
            self.rnn = nn.GRU(inputs, hidden, batch_first=True)
        self.v = nn.Parameter(torch.empty(hidden))
        self.c = nn.Parameter(torch.zeros(()))
        # The library's initialisation: uniform in [-0.1, 0.1], biases zero.
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias"):
                    p.zero_()
                else:
                    p.uniform_(-0.1, 0.1)
            self.v.uniform_(-0.1, 0.1)

    def embed(self, padded, lengths, packed):
        """Mean of the valid frames' hidden states, (batch x H)."""
        if packed:
            seq = rnn_utils.pack_padded_sequence(padded, lengths, batch_first=True,
                                                 enforce_sorted=True)
            out, _ = self.rnn(seq)
            frames, _ = rnn_utils.pad_packed_sequence(out, batch_first=True)  # zeros past the end
            return frames.sum(dim=1) / lengths[:, None].to(frames.dtype)
        frames, _ = self.rnn(padded)
        mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
        return (frames * mask[:, :, None]).sum(dim=1) / lengths[:, None].to(frames.dtype)

    def logits(self, emb, a, b):
        return (emb[a] * emb[b]) @ self.v + self.c


def measure(run, items_per_call, min_time, repetitions, reset=None):
    """Median items/s over `repetitions` timed runs of at least `min_time` seconds each.

    `reset`, when given, runs (untimed) every RESET_EVERY calls."""
    calls = 0

    def maybe_reset():
        nonlocal calls
        if reset is not None and calls > 0 and calls % RESET_EVERY == 0:
            reset()

    # Warm-up: first calls allocate and pick kernels.
    warm_end = time.perf_counter() + max(0.2, min_time / 4)
    while time.perf_counter() < warm_end:
        maybe_reset()
        run()
        calls += 1
    rates = []
    for _ in range(repetitions):
        elapsed, done = 0.0, 0
        while elapsed < min_time:
            maybe_reset()
            start = time.perf_counter()
            run()
            elapsed += time.perf_counter() - start
            calls += 1
            done += 1
        rates.append(done * items_per_call / elapsed)
    return statistics.median(rates)


def bench_embed_batch1(cell, shape, args):
    _, inputs, hidden, frames = shape
    model = Siamese(cell, inputs, hidden).eval()
    x = torch.randn(1, frames, inputs, generator=torch.Generator().manual_seed(7))

    def run():
        with torch.inference_mode():
            out, _ = model.rnn(x)
            return out.mean(dim=1)

    return measure(run, 1, args.min_time, args.repetitions), "unpadded"


def bench_embed_batch256(cell, shape, args):
    _, inputs, hidden, frames = shape
    model = Siamese(cell, inputs, hidden).eval()
    padded, lengths = random_batch(frames, inputs, 1, EMBED_BATCH)
    best = None
    for packed in args.layouts:
        def run(packed=packed):
            with torch.inference_mode():
                return model.embed(padded, lengths, packed)

        rate = measure(run, EMBED_BATCH, args.min_time, args.repetitions)
        if best is None or rate > best[0]:
            best = (rate, "packed" if packed else "padded")
    return best


def bench_train_batch50(cell, shape, args):
    _, inputs, hidden, frames = shape
    batches = [random_batch(frames, inputs, 100 + b, TRAIN_SERIES) for b in range(TRAIN_BATCHES)]
    # Pairs (2p, 2p + 1) of the C++ batch; after sorting by length, find each series' new row.
    pair_rows = []
    for b in range(TRAIN_BATCHES):
        lengths = [series_length(frames, 100 + b, i) for i in range(TRAIN_SERIES)]
        order = sorted(range(TRAIN_SERIES), key=lambda i: -lengths[i])
        row = {orig: r for r, orig in enumerate(order)}
        pair_rows.append((torch.tensor([row[2 * p] for p in range(TRAIN_PAIRS)]),
                          torch.tensor([row[2 * p + 1] for p in range(TRAIN_PAIRS)])))
    labels = torch.tensor([float(p % 2) for p in range(TRAIN_PAIRS)])

    best = None
    for packed in args.layouts:
        torch.manual_seed(1)
        model = Siamese(cell, inputs, hidden)
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        state = {"opt": None, "step": 0}

        def reset():
            model.load_state_dict(initial)
            state["opt"] = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-6)

        reset()

        def run(packed=packed):
            padded, lengths = batches[state["step"] % TRAIN_BATCHES]
            a, b = pair_rows[state["step"] % TRAIN_BATCHES]
            state["step"] += 1
            opt = state["opt"]
            opt.zero_grad(set_to_none=True)
            emb = model.embed(padded, lengths, packed)
            loss = F.binary_cross_entropy_with_logits(model.logits(emb, a, b), labels)
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), 5.0)
            opt.step()
            return loss

        rate = measure(run, TRAIN_PAIRS, args.min_time, args.repetitions, reset=reset)
        if best is None or rate > best[0]:
            best = (rate, "packed" if packed else "padded")
    return best


def gemm_rate():
    """GFLOP/s of one (256 x 128) x (128 x 128) float32 product: tells what BLAS this torch uses."""
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(256, 128, generator=gen), torch.randn(128, 128, generator=gen)
    rate = measure(lambda: a @ b, 2 * 256 * 128 * 128, 0.3, 3)
    return rate / 1e9


def blas_libraries():
    """Shared libraries mapped into this process that look like a BLAS (after torch's first GEMM)."""
    names = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                base = path.rsplit("/", 1)[-1]
                if path.startswith("/") and any(k in base for k in ("blas", "mkl_", "blis")):
                    names.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per repetition")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--filter", default="", help="run only rows whose name contains this")
    parser.add_argument("--json", help="also write the rows to this file as JSON")
    parser.add_argument("--layouts", default="packed,padded",
                        help="variable-length layouts to try in batches (the faster counts)")
    parser.add_argument("--no-gemm-check", action="store_true",
                        help="skip measuring torch's GEMM rate (e.g. when profiling)")
    args = parser.parse_args()
    layouts = args.layouts.split(",")
    if not layouts or any(v not in ("packed", "padded") for v in layouts):
        parser.error("--layouts takes packed, padded or both, comma-separated")
    args.layouts = [v == "packed" for v in layouts]

    torch.set_num_threads(args.threads)
    rows = []
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"min {args.min_time}s x {args.repetitions} repetitions (median)", flush=True)
    gemm = None if args.no_gemm_check else gemm_rate()
    if gemm is not None:
        print(f"# torch GEMM (256x128)x(128x128): {gemm:.1f} GFLOP/s; BLAS libraries loaded: "
              f"{', '.join(blas_libraries()) or 'none found'}", flush=True)
    print(f"{'benchmark':<36} {'items/s':>12}  variant", flush=True)
    for family, cell in (("srn-a", "srn"), ("gru-a", "gru")):
        for shape in SHAPES:
            if cell == "gru" and shape[0] != "arabic":
                continue  # the GRU is measured for information at the Arabic shape only
            for metric, fn in (("embed_batch1", bench_embed_batch1),
                               ("embed_batch256", bench_embed_batch256),
                               ("train_batch50", bench_train_batch50)):
                name = f"{family}/{shape[0]}/{metric}"
                if args.filter not in name:
                    continue
                rate, variant = fn(cell, shape, args)
                rows.append({"name": name, "items_per_second": rate, "variant": variant})
                print(f"{name:<36} {rate:>12.1f}  {variant}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "gemm_gflops": gemm, "blas": blas_libraries(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
