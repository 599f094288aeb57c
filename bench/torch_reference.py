#!/usr/bin/python3
"""PyTorch peer of the srn encoder: golden forward passes, losses and gradients.

Regenerate the committed golden file with (the system interpreter has torch; another python3 on
PATH may not):

    /usr/bin/python3 bench/torch_reference.py > tests/model/nn/testdata/torch_golden.txt

tests/model/torch_reference_test.cc replays every case through Network<double> + PairLoss<double>
and compares. The point is an independent implementation: the recurrent cells are PyTorch's own
nn.RNN / nn.GRU / nn.LSTM modules (run on packed variable-length batches), with our flat parameters
copied into them, and the gradients come from autograd. Everything is float64 and seeded, so the
output is deterministic for a given torch build.

File format (one record per line, whitespace-separated, values with 17 significant digits):

    case <name> family=<f> in=<d> hidden=<h> layers=<l>
    layout <tensors> (<name> <rows> <cols>)...     our ParameterLayout, in order
    series <len> <dims> <len*dims values, row-major>   one line per series, batch order
    pairs <n> (<a> <b> <label>)...
    scale <s>                                        loss = s * sum of per-pair BCE
    params <n> <values>                              flat vector in our layout order
    embeddings <rows> <cols> <values, row-major>     one row per series, batch order
    loss <value>
    grad <n> <values>                                d(loss)/d(params), our layout order
    end

Series values are float32 numbers (Series stores floats), so the C++ side sees exactly the inputs
PyTorch saw.
"""

import sys

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import rnn as rnn_utils

DTYPE = torch.float64

# (name, family, input dims, hidden, layers, series lengths, pairs (a, b, label)).
CASES = [
    ("srn-a", "srn-a", 3, 5, 1, [5, 1, 7, 3], [(0, 1, 1), (2, 3, 0), (0, 2, 0), (1, 3, 1)]),
    ("srn-l", "srn-l", 4, 4, 1, [2, 6, 4], [(0, 1, 0), (1, 2, 1), (2, 0, 1)]),
    ("sn-a", "sn-a", 3, 6, 1, [7, 2, 4, 1], [(0, 3, 1), (1, 2, 0), (2, 3, 0), (0, 0, 1)]),
    ("sn-l", "sn-l", 4, 5, 1, [3, 5, 1], [(0, 1, 1), (1, 2, 0), (0, 2, 0)]),
    ("gru-a", "gru-a", 3, 5, 1, [6, 3, 1, 4], [(0, 1, 0), (2, 3, 1), (1, 3, 1), (0, 2, 0), (3, 3, 1)]),
    ("gru-l", "gru-l", 4, 6, 1, [1, 7, 4], [(0, 1, 1), (1, 2, 0), (2, 0, 0), (1, 1, 1)]),
    ("lstm-a", "lstm-a", 4, 4, 1, [5, 2, 7], [(0, 1, 1), (1, 2, 0), (0, 2, 1)]),
    ("lstm-l", "lstm-l", 3, 5, 1, [3, 6, 1, 5], [(0, 1, 0), (2, 3, 1), (1, 3, 0), (0, 3, 1)]),
    ("logistic", "logistic", 4, 0, 0, [4, 1, 6], [(0, 1, 1), (1, 2, 0), (0, 2, 0)]),
    ("srn-a.2layers", "srn-a", 3, 4, 2, [6, 2, 5, 1], [(0, 1, 1), (2, 3, 0), (0, 3, 0), (1, 2, 1)]),
    ("gru-l.2layers", "gru-l", 4, 4, 2, [2, 5, 7], [(0, 1, 0), (1, 2, 1), (2, 0, 1), (0, 0, 0)]),
    ("lstm-a.2layers", "lstm-a", 3, 4, 2, [4, 7, 1, 3], [(0, 1, 1), (2, 3, 0), (1, 3, 1), (0, 2, 0)]),
]


def gates_of(cell):
    return {"srn": 1, "sn": 1, "gru": 3, "lstm": 4}[cell]


def layout_of(cell, in_dims, hidden, layers):
    """Our ParameterLayout (model/nn/parameters.h): [(name, rows, cols)] in flat order."""
    tensors = []
    if cell != "logistic":
        g = gates_of(cell)
        for l in range(layers):
            in_l = in_dims if l == 0 else hidden
            tensors.append((f"l{l}.W", g * hidden, in_l))
            if cell != "sn":
                tensors.append((f"l{l}.A", g * hidden, hidden))
            tensors.append((f"l{l}.b", g * hidden, 1))
            if cell == "gru":
                tensors.append((f"l{l}.b_hh", g * hidden, 1))
    tensors.append(("v", in_dims if cell == "logistic" else hidden, 1))
    tensors.append(("c", 1, 1))
    return tensors


def split(flat, layout):
    """Views of the flat vector as named (rows x cols) row-major tensors."""
    out, offset = {}, 0
    for name, rows, cols in layout:
        out[name] = flat[offset:offset + rows * cols].view(rows, cols)
        offset += rows * cols
    assert offset == flat.numel()
    return out


def encode(cell, pooling, hidden, layers, tensors, series):
    """Embeddings (batch x E) of `series` (list of (len x dims) tensors) via PyTorch modules.

    Returns (embeddings, bindings): bindings pairs each module parameter holding a copy of one of
    our tensors with that tensor's name, so the caller can read its gradient after backward().
    """
    lengths = torch.tensor([s.shape[0] for s in series])
    padded = rnn_utils.pad_sequence(series, batch_first=True)  # (batch x T x dims), zero padded
    bindings = []

    if cell == "logistic":
        frames = padded
    elif cell == "sn":
        # No recurrence: a per-frame affine map and relu (the padding is masked out below).
        assert layers == 1
        linear = nn.Linear(series[0].shape[1], hidden).to(DTYPE)
        with torch.no_grad():
            linear.weight.copy_(tensors["l0.W"])
            linear.bias.copy_(tensors["l0.b"].view(-1))
        bindings += [(linear.weight, "l0.W"), (linear.bias, "l0.b")]
        frames = torch.relu(linear(padded))
    else:
        in_dims = series[0].shape[1]
        if cell == "srn":
            module = nn.RNN(in_dims, hidden, num_layers=layers, nonlinearity="relu", batch_first=True)
        elif cell == "gru":
            module = nn.GRU(in_dims, hidden, num_layers=layers, batch_first=True)
        else:
            module = nn.LSTM(in_dims, hidden, num_layers=layers, batch_first=True)
        module = module.to(DTYPE)
        with torch.no_grad():
            for l in range(layers):
                getattr(module, f"weight_ih_l{l}").copy_(tensors[f"l{l}.W"])
                getattr(module, f"weight_hh_l{l}").copy_(tensors[f"l{l}.A"])
                getattr(module, f"bias_ih_l{l}").copy_(tensors[f"l{l}.b"].view(-1))
                # Only the GRU has a separate recurrent bias; relu and LSTM cells have one bias.
                if cell == "gru":
                    getattr(module, f"bias_hh_l{l}").copy_(tensors[f"l{l}.b_hh"].view(-1))
                else:
                    getattr(module, f"bias_hh_l{l}").zero_()
        for l in range(layers):
            bindings += [(getattr(module, f"weight_ih_l{l}"), f"l{l}.W"),
                         (getattr(module, f"weight_hh_l{l}"), f"l{l}.A"),
                         (getattr(module, f"bias_ih_l{l}"), f"l{l}.b")]
            if cell == "gru":
                bindings.append((getattr(module, f"bias_hh_l{l}"), f"l{l}.b_hh"))
        packed = rnn_utils.pack_padded_sequence(padded, lengths, batch_first=True,
                                                enforce_sorted=False)
        out, state = module(packed)
        frames, out_lengths = rnn_utils.pad_packed_sequence(out, batch_first=True)
        assert torch.equal(out_lengths, lengths)
        # The final state PyTorch reports must be the last valid frame of each series.
        h_n = (state[0] if cell == "lstm" else state)[-1]
        last = frames[torch.arange(len(series)), lengths - 1]
        assert torch.allclose(h_n, last, rtol=0, atol=1e-15)

    if pooling == "l":
        return frames[torch.arange(len(series)), lengths - 1], bindings
    mask = (torch.arange(frames.shape[1])[None, :] < lengths[:, None]).to(DTYPE)
    return (frames * mask[:, :, None]).sum(dim=1) / lengths[:, None].to(DTYPE), bindings


def fmt(x):
    return "%.17g" % x


def values(t):
    return " ".join(fmt(x) for x in t.reshape(-1).tolist())


def run_case(index, name, family, in_dims, hidden, layers, lengths, pairs, out):
    cell, pooling = ("logistic", "a") if family == "logistic" else family.split("-")
    layout = layout_of(cell, in_dims, hidden, layers)
    total = sum(r * c for _, r, c in layout)

    gen = torch.Generator().manual_seed(1000 + index)
    params = torch.rand(total, generator=gen, dtype=DTYPE) - 0.5  # uniform in [-0.5, 0.5)
    # Inputs are float32 values (what a Series holds), widened exactly to float64.
    series = [torch.randn(n, in_dims, generator=gen, dtype=torch.float32).to(DTYPE) for n in lengths]

    flat = params.clone().requires_grad_(True)
    tensors = split(flat, layout)
    emb, bindings = encode(cell, pooling, hidden, layers, tensors, series)
    a = torch.tensor([p[0] for p in pairs])
    b = torch.tensor([p[1] for p in pairs])
    labels = torch.tensor([float(p[2]) for p in pairs], dtype=DTYPE)
    logits = (emb[a] * emb[b]) @ tensors["v"].view(-1) + tensors["c"].view(())
    scale = 1.0 / len(pairs)
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") * scale
    loss.backward()

    # Gradients: the head's through `flat` directly; the cells' from the module parameters.
    grads = split(flat.grad.clone(), layout)
    for param, tensor_name in bindings:
        grads[tensor_name].copy_(param.grad.view(grads[tensor_name].shape))
    grad = torch.cat([grads[n].reshape(-1) for n, _, _ in layout])
    # Tensors not bound to a module (v, c, or everything for logistic) got their gradient via flat.
    bound = {n for _, n in bindings}
    for n, _, _ in layout:
        if n not in bound:
            assert torch.equal(grads[n], split(flat.grad, layout)[n])

    hid, lay = (0, 0) if cell == "logistic" else (hidden, layers)
    print(f"case {name} family={family} in={in_dims} hidden={hid} layers={lay}", file=out)
    print(f"layout {len(layout)} " + " ".join(f"{n} {r} {c}" for n, r, c in layout), file=out)
    for s in series:
        print(f"series {s.shape[0]} {s.shape[1]} {values(s)}", file=out)
    print(f"pairs {len(pairs)} " + " ".join(f"{p[0]} {p[1]} {p[2]}" for p in pairs), file=out)
    print(f"scale {fmt(scale)}", file=out)
    print(f"params {total} {values(params)}", file=out)
    print(f"embeddings {emb.shape[0]} {emb.shape[1]} {values(emb.detach())}", file=out)
    print(f"loss {fmt(loss.item())}", file=out)
    print(f"grad {total} {values(grad)}", file=out)
    print("end", file=out)


def main():
    torch.manual_seed(0)  # module construction draws default weights before we overwrite them
    out = sys.stdout
    print("# Generated by bench/torch_reference.py with torch " + torch.__version__ +
          "; do not edit. Regenerate with:", file=out)
    print("#   /usr/bin/python3 bench/torch_reference.py > tests/model/nn/testdata/torch_golden.txt",
          file=out)
    for index, case in enumerate(CASES):
        run_case(index, *case, out=out)


if __name__ == "__main__":
    main()
