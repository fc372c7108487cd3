"""The sandbox's /spend/logs/v2 pages, filters and serialises rows as LiteLLM's handler does (real rows from a
proxy are the reference)."""

import json
from datetime import UTC, datetime, timedelta

from govsite.devtools.sandbox import make_spend_row
from govsite.devtools.sandbox.store import SPEND_LOG_V2_COLUMNS
from tests.devtools.sandbox_helpers import (
    SAMPLE_ROW_KEYS,
    SAMPLES,
    error_of,
    spend_logs_get,
)


def _seed(sandbox, start: datetime, count: int, **fields) -> list[dict]:
    rows = [make_spend_row(start_time=start + timedelta(seconds=i), **fields) for i in range(count)]
    assert sandbox.insert_spend_rows(rows) == count
    return rows


def _as_v2_serialises(row: dict) -> dict:
    """What LiteLLM's /spend/logs/v2 returns for a row its payload builder made: the list columns, the
    metadata as an object, times cut to the table's milliseconds (ISO with six digits, as FastAPI
    writes a datetime)."""
    out = {column: row[column] for column in SPEND_LOG_V2_COLUMNS}
    out["metadata"] = json.loads(row["metadata"])
    for column in ("startTime", "endTime", "completionStartTime"):
        moment = datetime.fromisoformat(row[column])
        out[column] = moment.replace(microsecond=moment.microsecond // 1000 * 1000).isoformat()
    return out


def test_the_sample_rows_from_a_real_proxy_come_out_as_spend_logs_v2_serialises_them(sandbox):
    samples = [json.loads(path.read_text()) for path in sorted(SAMPLES.glob("spend-log-row.*.json"))]
    assert samples, "the captured samples are missing"
    for sample in samples:
        sample["request_id"] = f"{sample['request_id']}-{sandbox.unique('sample')}"
    sandbox.insert_spend_rows(samples)
    for sample in samples:
        [row] = spend_logs_get(
            sandbox, start_date="2000-01-01", end_date="2100-01-01", request_id=sample["request_id"]
        ).json()["data"]
        assert row == _as_v2_serialises(sample)
        assert row["startTime"] != sample["startTime"], "the sample's microseconds are cut"


def test_spend_logs_page_newest_first(sandbox):
    api_key = sandbox.unique("hash")
    rows = _seed(sandbox, datetime(2001, 2, 1, 8, tzinfo=UTC), 25, api_key=api_key)
    window = {"start_date": "2001-02-01 00:00:00", "end_date": "2001-02-01 23:59:59", "api_key": api_key}

    pages = [spend_logs_get(sandbox, page=page, page_size=10, **window).json() for page in (1, 2, 3, 4)]

    assert [len(p["data"]) for p in pages] == [10, 10, 5, 0]
    assert {(p["total"], p["total_pages"], p["total_is_capped"]) for p in pages} == {(25, 3, False)}
    seen = [r["request_id"] for p in pages for r in p["data"]]
    assert seen == [r["request_id"] for r in reversed(rows)]
    ascending = spend_logs_get(sandbox, page_size=5, sort_order="asc", **window).json()["data"]
    assert [r["request_id"] for r in ascending] == [r["request_id"] for r in rows[:5]]
    by_spend = spend_logs_get(sandbox, page_size=1, sort_by="spend", **window).json()
    assert by_spend["total"] == 25


def test_a_bare_end_date_excludes_that_day(sandbox):
    api_key = sandbox.unique("hash")
    _seed(sandbox, datetime(2001, 3, 5, 12, tzinfo=UTC), 3, api_key=api_key)

    bare = spend_logs_get(sandbox, start_date="2001-03-05", end_date="2001-03-05", api_key=api_key).json()
    timed = spend_logs_get(sandbox, start_date="2001-03-05", end_date="2001-03-05 23:59:59", api_key=api_key).json()
    with sandbox.client() as client:
        via_client = client.spend_logs_v2(
            start=datetime(2001, 3, 5, tzinfo=UTC), end=datetime(2001, 3, 5, 23, 59, 59, tzinfo=UTC), api_key=api_key
        )

    assert bare["total"] == 0, "LiteLLM reads a bare end_date as midnight: the day drops out"
    assert timed["total"] == 3
    assert via_client["total"] == 3


def test_the_total_caps_at_10000_but_paging_goes_on(sandbox):
    api_key = sandbox.unique("hash")
    rows = _seed(sandbox, datetime(2001, 4, 1, tzinfo=UTC), 10_050, api_key=api_key)
    window = {"start_date": "2001-04-01 00:00:00", "end_date": "2001-04-02 00:00:00", "api_key": api_key}

    first = spend_logs_get(sandbox, page=1, page_size=1000, **window).json()
    eleventh = spend_logs_get(sandbox, page=11, page_size=1000, **window).json()
    twelfth = spend_logs_get(sandbox, page=12, page_size=1000, **window).json()
    with sandbox.client() as client:
        everything = list(
            client.spend_logs_v2_all(
                start=datetime(2001, 4, 1, tzinfo=UTC), end=datetime(2001, 4, 2, tzinfo=UTC), api_key=api_key
            )
        )

    assert (first["total"], first["total_pages"], first["total_is_capped"]) == (10_000, 10, True)
    assert len(eleventh["data"]) == 50, "page 11 is past total_pages and still has rows"
    assert twelfth["data"] == []
    assert len({r["request_id"] for r in everything}) == len(rows) == 10_050


def test_spend_log_filters(sandbox):
    day = datetime(2001, 5, 1, tzinfo=UTC)
    tag = sandbox.unique("f")
    base = {"api_key": f"{tag}-hash"}
    _seed(sandbox, day, 2, user=f"{tag}-u1", team_id=f"{tag}-t1", key_alias=f"{tag}-alias-one", **base)
    _seed(sandbox, day + timedelta(hours=1), 3, user=f"{tag}-u2", model_group="claude-sonnet-4-5", **base)
    failed = _seed(sandbox, day + timedelta(hours=2), 1, status="failure", **base)
    window = {"start_date": "2001-05-01 00:00:00", "end_date": "2001-05-01 23:59:59"}

    def total(**params):
        return spend_logs_get(sandbox, **window, **params).json()["total"]

    assert total(api_key=f"{tag}-hash") == 6
    assert total(user_id=f"{tag}-u1") == 2
    assert total(team_id=f"{tag}-t1") == 2
    assert total(key_alias=f"{tag}-alias") == 2, "LiteLLM matches key_alias as a substring"
    assert total(api_key=f"{tag}-hash", model="anthropic/claude-sonnet-4-5") == 3
    assert total(api_key=f"{tag}-hash", model_group="claude-sonnet-4-5") == 3
    assert total(api_key=f"{tag}-hash", status_filter="failure") == 1
    assert total(api_key=f"{tag}-hash", status_filter="success") == 5
    assert total(request_id=failed[0]["request_id"]) == 1


def test_spend_log_request_errors(sandbox):
    window = {"start_date": "2001-01-01", "end_date": "2001-01-02"}
    too_big = spend_logs_get(sandbox, page_size=1001, **window)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["loc"] == ["query", "page_size"]
    missing = spend_logs_get(sandbox, start_date="2001-01-01")
    assert missing.status_code == 400
    assert error_of(missing)["message"] == "Start date and end date are required"
    assert spend_logs_get(sandbox, sort_by="colour", **window).status_code == 400
    assert spend_logs_get(sandbox, start_date="01/02/2001", end_date="2001-01-02").status_code == 400


def test_make_spend_row_has_exactly_the_real_rows_keys():
    row = make_spend_row(start_time=datetime(2026, 11, 23, 12, tzinfo=UTC), key_alias="a", tags=["x"])
    assert set(row) == SAMPLE_ROW_KEYS
    assert json.loads(row["metadata"])["user_api_key_alias"] == "a", "the payload builder writes JSON text"
    assert json.loads(row["request_tags"])[0] == "x"
