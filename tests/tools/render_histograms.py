"""Render latency samples as the exporter would (tests only): ``render_histograms.py SPEC OUT``.

SPEC is a JSON file ``{"name": [ms, ms, ...], ...}``; each name's samples go through a worker's
Histogram, the exporter's bucket layout and its text renderer, as ``request_type="LAYOUT"``.
"""

import json
import sys

from smload.exporter.exposition import RequestMetrics
from smload.measure.series import Series
from smload.record import Identity


def main(spec_path: str, out_path: str) -> None:
    spec = json.load(open(spec_path))
    lifetime = {}
    for name, samples in spec.items():
        series = lifetime[Identity("LAYOUT", name)] = Series()
        for ms in samples:
            series.requests += 1
            series.histogram.record(ms)
    with open(out_path, "w") as out:
        out.write(RequestMetrics(max_names=len(spec)).render(lifetime))


if __name__ == "__main__":
    main(*sys.argv[1:])
