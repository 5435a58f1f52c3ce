#!/usr/bin/env python3
"""Writes the ONNX backend node test cases of the installed `onnx` package to disk.

Recent onnx wheels ship the pytorch-converted / pytorch-operator / simple test data but
not the `node` data; the node cases ship as generator code (onnx.backend.test.case.node).
This script runs those generators and writes the standard layout:
    OUT/node/<case>/model.onnx, OUT/node/<case>/test_data_set_N/{input,output}_K.pb
and copies (symlinks) the shipped directories next to it, so the conformance runner reads
one tree. Cases with sequence/map/optional inputs are written too; the runner reports them
as unsupported. Idempotent: skips work when OUT/.stamp matches the onnx version.
"""
import os
import shutil
import sys

import onnx
from onnx import numpy_helper
from onnx.backend.test.case import node as node_cases

SHIPPED = ("pytorch-converted", "pytorch-operator", "simple")


def to_proto(value, type_proto, name):
    if isinstance(value, onnx.TensorProto):
        return value
    if type_proto.HasField("sequence_type"):
        return numpy_helper.from_list(value, name)
    if type_proto.HasField("optional_type"):
        return numpy_helper.from_optional(value, name)
    if type_proto.HasField("map_type"):
        return numpy_helper.from_dict(value, name)
    return numpy_helper.from_array(value, name)


def main():
    out = sys.argv[1]
    stamp = os.path.join(out, ".stamp")
    if os.path.exists(stamp) and open(stamp).read() == onnx.__version__:
        return
    node_dir = os.path.join(out, "node")
    shutil.rmtree(node_dir, ignore_errors=True)
    os.makedirs(node_dir)
    count = 0
    for case in node_cases.collect_testcases():
        d = os.path.join(node_dir, case.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            for kind, values, decl in (("input", inputs, case.model.graph.input),
                                       ("output", outputs, case.model.graph.output)):
                for j, v in enumerate(values):
                    p = to_proto(v, decl[j].type, decl[j].name)
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(p.SerializeToString())
        count += 1
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for kind in SHIPPED:
        link = os.path.join(out, kind)
        if os.path.islink(link) or os.path.exists(link):
            if os.path.islink(link):
                os.unlink(link)
            else:
                shutil.rmtree(link)
        os.symlink(os.path.join(data, kind), link)
    with open(stamp, "w") as f:
        f.write(onnx.__version__)
    print(f"generated {count} node cases into {node_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
