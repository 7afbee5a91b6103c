"""The served OpenAPI document fuzzed by schemathesis: every operation, as a logged-in user, against a real server.

Checks: no 5xx, and every answer has a documented status, content type, headers and body schema.
The seed is fixed and printed, so a failure replays with the same requests; set
JIANDONG_TEST_FUZZ_SEED to try others.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from jiandong.demo.club import DEMO_LOGIN_CODE, load_demo
from jiandong.web.openapi import build_spec
from tests.helpers.api import login

# No crash cache and no example database: the run keeps nothing (see the file).
CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"
SEED = int(os.environ.get("JIANDONG_TEST_FUZZ_SEED", "20261130"))
# Examples per operation and phase: enough to reach every parameter's edges, few enough for CI.
MAX_EXAMPLES = 5
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


async def test_every_operation_answers_as_documented_under_fuzzing(make_client, settings, tmp_path):
    load_demo(settings)
    client = await make_client()
    token = await login(client, DEMO_LOGIN_CODE)
    operations = sum(len(methods) for methods in build_spec(client.app)["paths"].values())
    print(f"schemathesis seed {SEED}, {MAX_EXAMPLES} examples per operation")
    # It runs in a directory of its own, which it must leave empty: a crash cache or an example database
    # written there would be written into the checkout by the same command run by hand from it.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
        "run", str(client.make_url("/api/v1/openapi.json")),
        "--header", f"token: {token}",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,
        # Hypothesis keeps its Unicode tables in .hypothesis/ of the working directory unless told otherwise.
        env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis")},
    )
    output = (await process.communicate())[0].decode(errors="replace")
    print(output)
    assert process.returncode == 0, output
    tested = re.search(r"Tested: (\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    assert tested is not None and int(tested.group(1)) == operations, output
    assert generated is not None and int(generated.group(1)) >= operations, output
    assert f"Seed: {SEED}" in output
    assert sorted(path.name for path in workdir.rglob("*")) == [], "the fuzzer wrote into its working directory"
