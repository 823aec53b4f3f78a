"""``smload emulator``: run the SageMaker runtime emulator.

    smload emulator [--config FILE] [--host 127.0.0.1] [--port 8080] [--region us-east-1]
                    [--strict-sigv4] [--access-key KEY_ID:SECRET[:SESSION_TOKEN[:EXPIRES_AT]] ...]
                    [--endpoint NAME [--variant name=A,weight=1,instances=2,concurrency=4,latency_ms=25 ...] ...]

Without ``--config`` and ``--endpoint`` it serves the bundled A/B example (``examples/ab-test.yaml``).
Never imports Locust: this process runs asyncio (uvloop), not gevent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from smload.exit_codes import USAGE as EXIT_USAGE
from smload.usage import UsageError

from . import config as cfg


class _InOrder(argparse.Action):
    """Keeps --endpoint and --variant in command-line order: each --variant belongs to the
    --endpoint before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = getattr(namespace, "layout", None) or []
        items.append((self.dest, values))
        namespace.layout = items


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as every smload command
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="smload emulator",
        description="A local SageMaker runtime endpoint with a capacity model, "
        "variants, faults and SigV4 checks (the runtime API, the container API, /metrics and /_emulator/*).",
    )
    p.add_argument(
        "--config", metavar="FILE", help="endpoints and variants (YAML or JSON; see README 'The emulator')"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--region",
        help=f"the region a strict SigV4 signature must be scoped to (default {cfg.DEFAULT_REGION})",
    )
    p.add_argument(
        "--strict-sigv4",
        action="store_true",
        default=None,
        help="verify every signature against the configured access keys (default: any well-formed one)",
    )
    p.add_argument(
        "--access-key",
        action="append",
        default=[],
        metavar="KEY_ID:SECRET[:TOKEN[:EXPIRES_AT]]",
        help="an access key strict SigV4 accepts (repeatable; a session token makes it temporary)",
    )
    p.add_argument(
        "--endpoint", action=_InOrder, metavar="NAME", help="an endpoint (repeatable; instead of --config)"
    )
    p.add_argument(
        "--variant",
        action=_InOrder,
        metavar="KEY=VALUE,...",
        help="a variant of the --endpoint before it: name, weight, instances, concurrency, latency_ms, "
        "latency_p99_ms, per_kib_ms, max_queue, max_wait_ms, body, json_bytes, stream_parts, "
        "part_delay_ms, stream_error_rate, model_error_status, drop_rate, slow_rate, slow_ms, or an error type "
        "(ModelError=0.01, ThrottlingException=0.005, ...) for its rate",
    )
    return p


def load(args: argparse.Namespace) -> cfg.Config:
    """The effective configuration; raises UsageError."""
    layout = getattr(args, "layout", None) or []
    if args.config and layout:
        raise UsageError("--endpoint", "give either --config FILE or --endpoint/--variant flags, not both")
    if not 0 < args.port < 65536:
        raise UsageError("--port", f"must be 1-65535, got {args.port}")
    if args.config:
        config = cfg.load_file(Path(args.config))
    elif layout:
        config = cfg.from_flags(layout)
    else:
        config = cfg.load_file(cfg.BUNDLED_EXAMPLE)
    if args.region:
        config.region = cfg.region_flag(args.region)
    if args.strict_sigv4:
        config.strict_sigv4 = True
    for spec in args.access_key:
        key = cfg.parse_access_key_flag(spec)
        config.access_keys[key.key_id] = key
    if config.strict_sigv4 and not config.access_keys:
        key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not (key_id and secret):
            raise UsageError(
                "--strict-sigv4",
                "no access keys to verify against: add --access-key KEY_ID:SECRET, "
                "access_keys in the config file, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            )
        token = os.environ.get("AWS_SESSION_TOKEN") or None
        config.access_keys[key_id] = cfg.AccessKey(key_id, secret, token)
        config.source += " (strict SigV4 trusts the key in AWS_ACCESS_KEY_ID)"
    return config


def describe(config: cfg.Config, host: str, port: int) -> str:
    lines = [
        f"smload emulator on http://{host}:{port} ({config.source}); region {config.region}; "
        f"SigV4 {'strict (' + str(len(config.access_keys)) + ' keys)' if config.strict_sigv4 else 'accepts any well-formed signature'}"
    ]
    for endpoint in config.endpoints:
        total = sum(v.weight for v in endpoint.variants)
        for c in endpoint.components:
            lines.append(
                f"  {endpoint.name}/{c.name}: inference component, {c.instances} copies, {_model(c)}"
            )
            if c.autoscaling is not None:
                lines.append(_autoscaling(c, config.time_scale))
        for v in endpoint.variants:
            if v.llm is not None:
                lines.append(
                    f"  {endpoint.name}/{v.name}: {100 * v.weight / total:.0f}% of traffic, {v.instances} "
                    f"instances, {_model(v)}"
                )
                continue
            lat = v.latency
            model = (
                f"lognormal median {lat.median_ms:g} ms p99 {lat.p99_ms:g} ms"
                if lat.p99_ms
                else f"{lat.median_ms:g} ms"
            )
            # slots x 1000 / ms, not slots / (ms / 1000): a median of 5e-324 ms is > 0, and / 1000 makes it 0
            capacity = (
                f"{v.slots * 1000 / lat.median_ms:.0f} req/s at the median"
                if lat.median_ms > 0
                else "unbounded"
            )
            lines.append(
                f"  {endpoint.name}/{v.name}: {100 * v.weight / total:.0f}% of traffic, {v.instances} x "
                f"{v.concurrency} slots, {model} -> capacity {capacity}, queue {v.queue_limit}"
            )
            if v.autoscaling is not None:
                lines.append(_autoscaling(v, config.time_scale))
    return "\n".join(lines)


def _autoscaling(v: cfg.Variant, time_scale: float) -> str:
    spec = v.autoscaling
    limits = spec.limits
    return (
        f"    autoscaling {limits.min_capacity}..{limits.max_capacity}, in service {limits.startup_s:g} s after a "
        f"decision, time scale {time_scale:g}: {'; '.join(p.describe() for p in spec.policies)}"
    )


def _model(v: cfg.Variant) -> str:
    """One line of a variant's or component's capacity model (per instance or copy)."""
    llm = v.llm
    if llm is None:
        lat = v.latency
        return f"{v.concurrency} slots of {lat.median_ms:g} ms, queue {v.queue_limit}"
    batch = llm.max_batch
    step = llm.step_ms(batch)
    return (
        f"LLM ({llm.format}): batch {batch}, decode {llm.decode.base_ms:g} + {llm.decode.per_seq_ms:g} ms x batch "
        f"-> {1000 * batch / step:,.0f} tokens/s per instance at TPOT {step:g} ms (full batch, no prefill), "
        f"KV {llm.kv_cache_tokens} tokens, queue {v.queue_limit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load(args)
    except UsageError as exc:
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return EXIT_USAGE
    from .server import serve  # after validation: a usage error needs no event loop

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists (not on Windows)
        uvloop = None

    def ready(server) -> None:
        print(describe(config, args.host, args.port), flush=True)

    try:
        if uvloop is not None:
            uvloop.run(serve(config, args.host, args.port, ready))
        else:  # pragma: no cover
            asyncio.run(serve(config, args.host, args.port, ready))
    except OSError as exc:  # e.g. the port is taken: one line, not a traceback
        sys.stderr.write(
            f"{parser.prog}: error: --port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
