"""The floor for the scoring service's latency: a bare FastAPI app on the same uvicorn settings
(``vigil serve``'s: one process, uvloop and httptools when installed, no access log) whose
``POST /v1/score`` parses the JSON body and answers a small JSON object, with no model, no
feature read and no log. What the service adds over it is the service's own cost; what the
floor itself costs is the machine's (and the load client's) share.

    python -m bench.serving_floor --port 8799
"""

from __future__ import annotations

import argparse
import json

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI(title="bare floor")

    @app.post("/v1/score")
    async def score(request: Request):
        body = json.loads(await request.body() or b"null")
        return {"post_id": body.get("post_id"), "decision": "allow", "probability": 0.0}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.serving_floor")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
