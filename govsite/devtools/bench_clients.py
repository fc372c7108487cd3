"""The load of `manage.py bench_load`: locust, headless, through its library API.

Run by bench_load as its own process (`python -m govsite.devtools.bench_clients SPEC OUT`) because
importing locust makes gevent patch the whole interpreter; nothing of Django is imported here.

SPEC (JSON, written by `bench_load --prepare`) names each endpoint with its path per client, the
session cookie of each client and a text the page must contain (the endpoint's, or the client's own);
OUT receives the measurements.
Every request must answer 200 with that text: a redirect to the login page or an error page counts
as an error. Response times are kept whole (locust's own percentiles are rounded to buckets).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of response times in milliseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def user_class(endpoint: str, spec: dict, think: tuple[float, float]) -> type[FastHttpUser]:
    clients = itertools.cycle(spec["clients"])

    class Client(FastHttpUser):
        wait_time = between(*think)
        # One connection per client, as a browser tab keeps one alive.
        concurrency = 1

        def on_start(self):
            client = next(clients)
            self.path = client["path"]
            self.expect = client.get("expect", spec.get("expect", ""))
            self.headers = {"Cookie": f"sessionid={client['session']}", "Accept": spec.get("accept", "text/html")}

        @task
        def get(self):
            with self.client.get(
                self.path, name=endpoint, headers=self.headers, allow_redirects=False, catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")
                elif self.expect not in (response.text or ""):
                    response.failure(f"the page does not say {self.expect!r}")

    Client.__name__ = f"{endpoint.title().replace('_', '')}Client"
    return Client


def run(spec: dict, *, host: str, users: int, duration: float, think: tuple[float, float], ramp: float) -> dict:
    """The clients start evenly over `ramp` seconds, as people arrive, not all in the same millisecond; the
    measured `duration` begins once every client has started and had a first request answered (`ramp` + 2 s
    from the start). Requests answered before then are not counted."""
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    error_kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    measuring = False

    def on_request(name, response_time, exception=None, **_):
        if not measuring:
            return
        times[name].append(response_time)
        if exception is not None:
            errors[name] += 1
            error_kinds[name][str(exception)[:120]] += 1

    events.request.add_listener(on_request)
    classes = [user_class(name, endpoint, think) for name, endpoint in spec["endpoints"].items()]
    env = Environment(user_classes=classes, host=host, events=events, stop_timeout=5)
    runner = env.create_local_runner()
    runner.start(user_count=users, spawn_rate=users / ramp if ramp > 0 else users)
    gevent.sleep(ramp + 2)
    measuring, started = True, time.monotonic()
    gevent.spawn_later(duration, runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started

    def summary(values: list[float], failed: int) -> dict:
        return {
            "requests": len(values),
            "rps": len(values) / elapsed,
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": max(values, default=0.0),
            "errors": failed,
        }

    result = {name: summary(values, errors[name]) for name, values in times.items()}
    result["overall"] = summary([t for values in times.values() for t in values], sum(errors.values()))
    return {
        "seconds": elapsed,
        "users": users,
        "endpoints": result,
        "error_kinds": {k: dict(v) for k, v in error_kinds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("out")
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--think-min", type=float, default=0.5)
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the clients start")
    args = parser.parse_args()
    with open(args.spec) as fh:
        spec = json.load(fh)
    result = run(
        spec,
        host=args.host,
        users=args.users,
        duration=args.duration,
        think=(args.think_min, args.think_max),
        ramp=args.ramp,
    )
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
