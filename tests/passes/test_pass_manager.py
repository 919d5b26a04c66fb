import numpy as np
import pytest
from onnx import helper

from hwflow.errors import ModelError
from hwflow.ir.graph import Graph
from hwflow.passes import (
    Pass, PassError, PassManager, PassResult, PostconditionError, PreconditionError, optimize,
)  # fmt: skip


class CountDown(Pass):
    """Modifies the graph ``n`` times, then reaches its fixed point."""

    def __init__(self, n):
        self.n = n
        self.calls = 0

    def call(self, graph: Graph) -> PassResult:
        self.calls += 1
        modified = self.n > 0
        self.n -= 1
        return PassResult(graph, modified)


def test_runs_to_a_fixed_point():
    p = CountDown(3)
    res = PassManager([p], steps=10)(Graph("g"))
    assert res.modified and p.calls == 4  # three changes, then one quiet round


def test_step_cap_stops_a_pass_that_never_settles():
    p = CountDown(100)
    res = PassManager([p], steps=5)(Graph("g"))
    assert res.modified and p.calls == 5


def test_requires_and_ensures_are_checked_in_call():
    class Needs(Pass):
        def requires(self, graph):
            if graph.name != "ok":
                raise ValueError("wrong graph")

        def ensures(self, graph):
            if graph.meta.get("broken"):
                raise ValueError("left broken")

        def call(self, graph):
            graph.meta["broken"] = graph.meta.get("break", False)
            return PassResult(graph, False)

    with pytest.raises(PreconditionError, match="Needs: precondition failed: wrong graph"):
        Needs()(Graph("nope"))
    g = Graph("ok")
    g.meta["break"] = True
    with pytest.raises(PostconditionError, match="left broken"):
        Needs()(g)
    assert Needs()(Graph("ok")).modified is False


def test_failures_are_wrapped_with_the_step():
    class Boom(Pass):
        def call(self, graph):
            raise KeyError("x")

    with pytest.raises(PassError, match=r"pass Boom failed at step 0: KeyError"):
        PassManager([Boom()])(Graph("g"))


def test_user_errors_keep_their_class_and_name_the_pass(kit):
    class Corrupt(Pass):
        def call(self, graph):
            graph.tensors["y"].shape = (1, 99)  # verify() must catch this between passes
            return PassResult(graph, True)

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    g = kit.graph(kit.model(nodes, [1, 3]))
    with pytest.raises(ModelError, match=r"pass Corrupt \(step 0\): node .* \(Relu\): output 'y' is declared"):
        PassManager([Corrupt()])(g)


def test_constructor_checks_arguments():
    with pytest.raises(TypeError, match="PassManager takes Pass instances, not 3"):
        PassManager([3])
    with pytest.raises(ValueError, match="steps must be a positive int, not 0"):
        PassManager([], steps=0)


def test_optimize_pipeline_end_to_end(kit):
    c = 4
    inits = {
        "w": kit.weights(c, 3, 3, 3), "g": kit.weights(c) + 2, "b": kit.weights(c), "m": kit.weights(c),
        "v": np.abs(kit.weights(c)) + 0.5, "s": np.array([1, -1], np.int64), "fw": kit.weights(c * 9, 5),
        "fb": kit.weights(5), "mean": np.float32(0.5),
    }  # fmt: skip
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["x0"]),
        helper.make_node("Conv", ["x0", "w"], ["c"]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Reshape", ["d", "s"], ["f"]),
        helper.make_node("MatMul", ["f", "fw"], ["h"]),
        helper.make_node("Add", ["h", "fb"], ["h2"]),
        helper.make_node("Clip", ["h2"], ["h3"], min=0.0, max=6.0),
        helper.make_node("Softmax", ["h3"], ["y"], axis=1),
    ]
    model = kit.model(nodes, [1, 3, 5, 5], inits=inits, opset=10)
    g = kit.graph(model)
    opt = optimize(g)
    assert opt.ops() == ["Conv", "Flatten", "Gemm", "Softmax"]
    conv, _, gemm, soft = opt.nodes
    assert conv.attrs["activation"] == {"op": "Relu"}
    assert gemm.attrs["activation"] == {"op": "Clip", "min": 0.0, "max": 6.0}
    assert soft.attrs["host"] is True
    assert len(g) == 10  # optimize works on a copy
    kit.same_outputs(model, opt)
