"""The benchmark harness: ``python -m bench`` (or ``make bench``).

It starts the mock Ollama, the gateway in embedded and in scale-out mode as real
processes, drives load at 127.0.0.1 only (``wrk`` for request/response, an aiohttp
client for streams), and prints one table per mode with the direct call to the mock
and the gateway side by side, then every target of issue 9 next to its bound.
Results go to ``bench/RESULTS.md``; raw output to ``bench/results/`` (git-ignored).
"""
