"""Development tooling, never called by production: the sandbox gateway (a stand-in LiteLLM proxy for the
demo and the tests), the benchmarks and their data generators, the demo's seed and synthetic traffic,
and the process helpers the benchmarks and the server tests share.

It is installed like any app so that `make demo`, `make bench` and the tests find its management
commands (`sandbox_gateway`, `seed_demo`, `bench_ingest`, `bench_dashboards`, `bench_export`,
`bench_load`). It may import any product module; no product module may import it (an import-linter
contract in pyproject.toml says so).
"""
