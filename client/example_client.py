#!/usr/bin/python3
"""A minimal Python client of srn-server: enroll a signer, then verify a genuine signature and a
skilled forgery.

Needs Debian's python3-grpcio and python3-protobuf, plus protoc and grpc_python_plugin (packages
protobuf-compiler and protobuf-compiler-grpc, already build dependencies). The Python stubs are
generated at run time into a temp dir: Debian's python3-grpc-tools (1.14) is far too old for
protobuf 3.21, and generating them keeps the stubs in step with proto/ by construction. Run it
with Debian's /usr/bin/python3 (a pyenv or virtualenv Python does not see those packages):

    /usr/bin/python3 client/example_client.py --server=127.0.0.1:50051 \\
        --task2=../shared/data/svc2004/Task2 --user=1

The bearer token, if the server wants one, comes from $SRN_TOKEN.
"""

import argparse
import importlib
import os
import subprocess
import sys
import tempfile

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")


def load_stubs(out_dir):
    """Generates srn/v1/similarity_pb2{,_grpc}.py into out_dir and imports them."""
    subprocess.run(
        ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
         "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin", "srn/v1/similarity.proto"],
        check=True)
    sys.path.insert(0, out_dir)
    return (importlib.import_module("srn.v1.similarity_pb2"),
            importlib.import_module("srn.v1.similarity_pb2_grpc"))


def read_svc2004(path, pb):
    """An SVC2004 file (count line, then X Y T Button [Az Alt Pressure]) as a SeriesInput."""
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    count, rows = int(lines[0][0]), [[int(v) for v in row] for row in lines[1:]]
    if len(rows) != count:
        raise ValueError(f"{path}: line 1 announces {count} samples but the file has {len(rows)}")
    pen = pb.PenTrajectory(
        x=[r[0] for r in rows], y=[r[1] for r in rows], t_ms=[r[2] - rows[0][2] for r in rows],
        stroke_start=[(r[3] & 1) == 0 for r in rows])  # an even button status starts a stroke
    if len(rows[0]) == 7:
        pen.pressure.extend(r[6] for r in rows)
    return pb.SeriesInput(pen=pen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--task2", default="../shared/data/svc2004/Task2", help="SVC2004 Task2 folder")
    parser.add_argument("--user", type=int, default=1, help="signer 1-40: S1-S20 genuine, S21-S40 forgeries")
    args = parser.parse_args()

    import grpc  # Debian: python3-grpcio

    with tempfile.TemporaryDirectory() as stubs_dir:
        pb, pb_grpc = load_stubs(stubs_dir)
        stub = pb_grpc.SimilarityServiceStub(grpc.insecure_channel(args.server))
        token = os.environ.get("SRN_TOKEN")
        metadata = [("authorization", f"Bearer {token}")] if token else []

        def sig(s):
            return read_svc2004(os.path.join(args.task2, f"U{args.user}S{s}.TXT"), pb)

        try:
            info = stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=metadata, timeout=10)
            print(f"model {info.model_id} ({info.family}), default threshold {info.default_threshold:.3f}")

            subject = f"U{args.user}"
            enrolled = stub.Enroll(pb.EnrollRequest(subject_id=subject, references=[sig(s) for s in range(1, 6)],
                                                    mode=pb.ENROLL_MODE_REPLACE), metadata=metadata, timeout=30)
            print(f"enrolled {subject} with {enrolled.subject.reference_count} references (S1-S5)")

            for label, s in (("genuine S10", 10), ("forgery S25", 25)):
                r = stub.Verify(pb.VerifyRequest(subject_id=subject, query=sig(s)), metadata=metadata, timeout=10)
                print(f"{label}: score {r.score:.4f} -> {'ACCEPTED' if r.accepted else 'REJECTED'} "
                      f"(threshold {r.threshold:.3f}; per reference "
                      f"{' '.join(f'{x:.3f}' for x in r.reference_scores)})")
                if r.HasField("srn_score"):  # the server fuses the DTW signature verifier
                    print(f"  fused with DTW: srn score {r.srn_score:.4f}, "
                          f"dtw distance ratio {r.dtw_distance_ratio:.3f}")
        except grpc.RpcError as e:
            print(f"example_client: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as e:
            print(f"example_client: cannot read a signature: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
