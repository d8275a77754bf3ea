"""The backprop page: seed 003's branch-and-merge example with its constants editable, both
iterations worked by :func:`graphgrad.graph.explain` exactly as ``graphgrad explain`` does."""

from __future__ import annotations

import numpy as np
from starlette.routing import Route

from ..graph import examples
from ..graph.render import to_svg
from .limits import number
from .page import Page
from .web import answer, in_thread, read_json

# Seed 003's constants: input, label, regularisation, learning rate, the second iteration's
# input, and the initial parameters.
SEED = {"x": 2.0, "y": 1.0, "lam": 0.1, "eta": 0.1, "x2": 0.0, "a": 1.0, "b": 0.0, "c": 1.0,
        "d": 0.0}
LIMIT = 1e3  # every constant is in [-LIMIT, LIMIT]: the page is about by-hand arithmetic


def work(values: dict) -> dict:
    """Both iterations: explain at x, apply the update, explain at x2 (as the CLI does)."""
    graph = examples.branch_and_merge(values["a"], values["b"], values["c"], values["d"],
                                      values["lam"])
    iterations = []
    for x in (values["x"], values["x2"]):
        with np.errstate(all="ignore"):
            explanation = graph.explain({"x": x, "y": values["y"]}, lr=values["eta"])
        run = explanation.run
        picture = to_svg(graph.to_dict(values=False),
                         values={i: v.detach().numpy() for i, v in run.values.items()},
                         grads=run.grads)
        iterations.append({"x": x, "html": explanation.to_html(), "text": explanation.to_text(),
                           "table": explanation.to_dict(), "svg": picture})
        explanation.apply_update()
    return {"values": values, "iterations": iterations}


async def backprop(request):
    data = await read_json(request)
    values = {k: number(data, k, v, low=-LIMIT, high=LIMIT) for k, v in SEED.items()}
    return answer(await in_thread(work, values))


async def seed(request):
    return answer({"seed": SEED, "limit": LIMIT})


PAGE = Page(
    slug="backprop", title="Backprop",
    summary="Seed 003's branch-and-merge example, both iterations, digit for digit with "
            "graphgrad explain; change x, y, lambda, eta and the starting a, b, c, d.",
    routes=[
        Route("/api/backprop", backprop, methods=["POST"]),
        Route("/api/backprop/seed", seed, methods=["GET"]),
    ],
)
