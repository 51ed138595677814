"""The malformed-input corpus on POST /v1/analyze: every /v1/classify case of tests/hardening/corpus.py sent to
/v1/analyze instead gets the same status and error code (same upload forms, same error table), never a 5xx, through
the Lambda handler and through `hematovision serve`. `explain` in a case's query becomes `annotate` (the route's
own flag), so a bad value is still a 400. A 200 is checked as an analyze answer (the classify checks do not apply).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import time

from tests import fakes
from tests.hardening import corpus
from tests.hardening.test_corpus import TIME_BOUND_S, assert_clean_logs, check_answer, event_for, send_corpus

ANALYZE = "/v1/analyze"


def analyze_shape(answer: dict) -> None:
    assert isinstance(answer["cells"], list) and len(answer["cells"]) <= 64, answer
    assert answer["cell_count"] == sum(answer["counts"].values()) >= len(answer["cells"])
    assert isinstance(answer["width"], int) and isinstance(answer["height"], int)
    for cell in answer["cells"]:
        x0, y0, x1, y1 = cell["box"]
        assert 0 <= x0 < x1 <= answer["width"] and 0 <= y0 < y1 <= answer["height"], cell


def analyze_cases() -> list[corpus.Case]:
    return [
        dataclasses.replace(
            case,
            id=f"analyze-{case.id}",
            path=ANALYZE,
            query=case.query.replace("explain=", "annotate="),
            check=analyze_shape,
        )
        for case in corpus.build()
        if case.path == corpus.CLASSIFY
    ]


CASES = analyze_cases()


def test_the_corpus_covers_the_route():
    assert len(CASES) >= 200
    assert {c.status for c in CASES if isinstance(c.status, int)} >= {200, 400, 413, 415, 422}


def test_analyze_corpus_through_the_handler(api, context, capsys):
    handler = api.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    distribution = collections.Counter()
    try:
        for case in CASES:
            started = time.perf_counter()
            response = api.lambda_handler(event_for(case), context)  # an uncaught exception fails the test here
            assert time.perf_counter() - started <= TIME_BOUND_S, case.id
            distribution[response["statusCode"]] += 1
            check_answer(case, response["statusCode"], response["body"].encode(), through_server=False)
        alive = corpus.Case("alive", ANALYZE, "image/jpeg", fakes.synthetic_cell(), 200)
        assert api.lambda_handler(event_for(alive), context)["statusCode"] == 200
    finally:
        handler.setStream(previous)
    out = capsys.readouterr()
    assert_clean_logs(stream.getvalue() + out.out + out.err, CASES)
    print(f"\nanalyze corpus through the handler: {len(CASES)} cases, statuses {dict(sorted(distribution.items()))}")


def test_analyze_corpus_through_the_server(server):
    workers = server.workers()

    distribution = send_corpus(server, CASES)
    assert server.workers() == workers, "a worker process died during the corpus (a crash, not an answer)"
    status, _, body = server.request("POST", ANALYZE, fakes.synthetic_cell(), {"Content-Type": "image/jpeg"})
    assert status == 200, body
    assert_clean_logs(server.log_path.read_text(errors="replace"), CASES)
    print(f"\nanalyze corpus through serve: {len(CASES)} cases, statuses {dict(sorted(distribution.items()))}")
