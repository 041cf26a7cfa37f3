"""OpenTelemetry tracing: the one module that imports ``opentelemetry``, and only when tracing is on.

Off by default. :func:`configure` (called by the server at start) reads the standard
variables: ``OTEL_TRACES_EXPORTER`` (``console``, ``otlp``, ``none``; a comma list;
unset or ``none``: off), ``OTEL_SERVICE_NAME`` (default ``headwater``), and what the
SDK reads itself (``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_*``,
``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_PROPAGATORS``). The OTLP
exporter is the optional extra ``headwater[otlp]``, imported only when asked for.

The rest of the engine traces through :func:`span` (a shared no-op context manager
when off: one module attribute read) and the service's handler layer through
:func:`rpc_span` (a server span per call, a child of the caller's W3C
``traceparent``). When off nothing here imports ``opentelemetry``. Attributes carry
names and types (method, permission, resource type, counts, status, request id),
never object ids, caveat context or tokens (docs/operations.md#tracing).

Example::

    >>> configure({}) is False  # nothing set: off
    True
    >>> with span("headwater.store.read") as s:
    ...     s is NOOP
    True
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

__all__ = ["NOOP", "SUBPROBLEM_SPAN_NS", "RpcSpan", "configure", "enabled", "install", "rpc_span",
           "settings_problem", "shutdown", "span", "traced_check", "traced_enter"]

#: The tracer when tracing is on (None: off; every helper here is then a no-op).
tracer: Any = None
_provider: Any = None
_otel: Any = None  # what the RPC spans use of opentelemetry, imported once by configure()


class _Noop:
    """The span of tracing off: a context manager doing nothing, with a ``set_attribute`` doing nothing."""

    __slots__ = ()

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None


NOOP = _Noop()


def enabled() -> bool:
    """Is tracing on?"""
    return tracer is not None


def _exporters(env: Mapping[str, str]) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (``none`` and blanks left out)."""
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    return [n for n in names if n != "none"]


def settings_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """What is wrong with the tracing settings, without turning tracing on (None: nothing). The supervisor of
    ``--processes N`` asks before starting workers, so a bad value stops the command instead of its workers."""
    import importlib.util

    env = os.environ if environ is None else environ
    names = _exporters(env)
    unknown = sorted(set(names) - {"console", "otlp"})
    if unknown:
        return f"OTEL_TRACES_EXPORTER={','.join(unknown)}: Headwater exports to console, otlp or none"
    if names and importlib.util.find_spec("opentelemetry.sdk") is None:
        return "OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed"
    if "otlp" in names:
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
        module = "grpc" if protocol == "grpc" else "http"
        try:
            found = importlib.util.find_spec(f"opentelemetry.exporter.otlp.proto.{module}") is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            package = "opentelemetry-exporter-otlp-proto-grpc" if module == "grpc" else "headwater[otlp]"
            return f"OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install '{package}'"
    return None


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if ``OTEL_TRACES_EXPORTER`` (in ``environ``, default os.environ) names an exporter; True
    if on. Raises ConfigError for an unknown exporter, or ``otlp`` without the ``headwater[otlp]`` extra."""
    env = os.environ if environ is None else environ
    names = _exporters(env)
    if not names or tracer is not None:
        return tracer is not None
    from .errors import ConfigError
    unknown = sorted(set(names) - {"console", "otlp"})
    if unknown:
        raise ConfigError(f"OTEL_TRACES_EXPORTER={','.join(unknown)}: Headwater exports to console, otlp or none")
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from .version import version
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or "headwater",
                                "service.version": version()})
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER(_ARG)
    for name in names:
        exporter = ConsoleSpanExporter(out=sys.stdout) if name == "console" else _otlp_exporter(env, ConfigError)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def install(provider: Any) -> None:
    """Trace into ``provider`` (an SDK ``TracerProvider``: :func:`configure` builds one from the environment; a
    program embedding the engine may give its own), from now on; :func:`shutdown` shuts it down."""
    global tracer, _provider, _otel
    from types import SimpleNamespace

    from opentelemetry import context, propagate, trace

    from .version import version
    _otel = SimpleNamespace(extract=propagate.extract, attach=context.attach, detach=context.detach,
                            current=trace.set_span_in_context, server=trace.SpanKind.SERVER,
                            current_span=trace.get_current_span,
                            error=lambda code: trace.Status(trace.StatusCode.ERROR, code))
    _provider = provider
    tracer = trace.get_tracer("headwater", version(), tracer_provider=provider)


def _otlp_exporter(env: Mapping[str, str], error: type[Exception]) -> Any:
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[no-redef]
    except ImportError:
        package = "opentelemetry-exporter-otlp-proto-grpc" if protocol == "grpc" else "headwater[otlp]"
        raise error(f"OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install '{package}'") from None
    # the exporter reads os.environ itself; the settings given here (the server's, or a test's) come first
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/")
        endpoint = base if protocol == "grpc" else f"{base}/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()


def shutdown() -> None:
    """Export the spans still buffered and turn tracing off (the server calls it when it stops)."""
    global tracer, _provider
    provider, tracer, _provider = _provider, None, None
    if provider is not None:
        provider.shutdown()


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A span named ``name``, a child of the current one, for a ``with`` block (:data:`NOOP` when off, and when
    the current span is one the sampler dropped: see :func:`_dropped`)."""
    if tracer is None or _dropped():
        return NOOP
    return tracer.start_as_current_span(name, attributes=attributes)


def _dropped() -> bool:
    """Is the current span a real one that is not recorded (its trace not sampled)? Its children would not be
    recorded either, with the samplers the SDK reads from ``OTEL_TRACES_SAMPLER``: the ``parentbased_*`` ones
    follow the parent's decision, and ``traceidratio`` decides by the trace id, which a child shares (and
    ``always_on`` records every parent). So no child span is made: a dropped call costs its RPC span only. Outside
    any span (the engine called in-process) the current span is the invalid one, and spans are made as usual."""
    current = _otel.current_span()
    return not current.is_recording() and current.get_span_context().is_valid


def _type_of(ref: Any) -> str:
    return ref.type if not isinstance(ref, str) else ref.partition(":")[0]


#: A sub-problem of a check that takes at least this long (ns) gets a span of its own (``headwater.subproblem``).
SUBPROBLEM_SPAN_NS = 1_000_000

#: The deepest step of the check running in this context: ``[lowest depth argument seen]`` (the evaluator counts
#: depth down from ``max_depth``), set by :func:`traced_check`, lowered by :func:`traced_enter`.
_DEEPEST: ContextVar[list[int] | None] = ContextVar("headwater_trace_deepest", default=None)


def traced_check(check: Callable[..., Any], max_depth: int = 0) -> Callable[..., Any]:
    """``check`` (an engine's check) with a ``headwater.check`` span around each call when tracing is on (the
    permission, the resource type, the answer, and ``headwater.depth``: how many levels of sub-problems the
    evaluation went below the permission, 0 when it was answered at the top or by a cache; no ids, no context);
    ``check`` itself when off."""
    if tracer is None:
        return check

    def traced(resource: Any, permission: str, subject: Any, **options: Any) -> Any:
        if _dropped():  # the call's trace is not sampled: neither would this span be
            return check(resource, permission, subject, **options)
        with span("headwater.check", {"headwater.permission": permission,
                                      "headwater.resource_type": _type_of(resource),
                                      "headwater.subject_type": _type_of(subject)}) as s:
            deepest = [max_depth]
            token = _DEEPEST.set(deepest)
            try:
                result = check(resource, permission, subject, **options)
            finally:
                _DEEPEST.reset(token)
            s.set_attribute("headwater.permissionship", result.permissionship.name)
            s.set_attribute("headwater.depth", max_depth - deepest[0])
            return result
    return traced


def traced_enter(enter: Callable[..., Any]) -> Callable[..., Any]:
    """The evaluator's ``enter`` (one sub-problem, below every cache) noting the depth reached for the check's
    span, and giving a sub-problem that took at least :data:`SUBPROBLEM_SPAN_NS` a ``headwater.subproblem`` span
    (its definition, relation and depth; no ids); ``enter`` itself when tracing is off, so the evaluator's path is
    unchanged then."""
    if tracer is None:
        return enter
    clock = time.time_ns

    def entered(ev: Any, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Any:
        deepest = _DEEPEST.get()
        if deepest is not None and depth < deepest[0]:
            deepest[0] = depth
        start = clock()
        outcome = enter(ev, rtype, rid, name, depth, negated)
        end = clock()
        if end - start >= SUBPROBLEM_SPAN_NS and not _dropped():
            tracer.start_span("headwater.subproblem", start_time=start, attributes={
                "headwater.resource_type": rtype, "headwater.relation": name,
                "headwater.depth_left": depth}).end(end_time=end)
        return outcome
    return entered


# ------------------------------------------------------------------ the RPC spans (engine/service/handlers.py)


class RpcSpan:
    """The server span of one call; as a context manager, it is the current span (not ended on exit: a stream's
    steps enter it one by one); :meth:`finish` ends it with the call's status."""

    __slots__ = ("_span", "_tokens")

    def __init__(self, method: str, metadata: Sequence[tuple[str, str | bytes]] | None, request_id: str) -> None:
        carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
        service, _, name = method.lstrip("/").rpartition("/")
        self._span = tracer.start_span(f"{service}/{name}", context=_otel.extract(carrier),
                                       kind=_otel.server,
                                       attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name,
                                                   "headwater.request_id": request_id})
        self._tokens: list[Any] = []

    def __enter__(self) -> RpcSpan:
        self._tokens.append(_otel.attach(_otel.current(self._span)))
        return self

    def __exit__(self, *exc: object) -> None:
        _otel.detach(self._tokens.pop())

    def finish(self, code: str, number: int) -> None:
        """End the span: ``code`` the call's grpc.StatusCode name, ``number`` its value."""
        self._span.set_attribute("rpc.grpc.status_code", number)
        if code != "OK":
            self._span.set_status(_otel.error(code))
        self._span.end()


def rpc_span(method: str, metadata: Sequence[tuple[str, str | bytes]] | None, request_id: str) -> Any:
    """The server span of a call of ``method`` (``/package.Service/Method``), a child of the trace context in
    ``metadata`` (W3C ``traceparent``/``tracestate``), as an :class:`RpcSpan`; None when tracing is off."""
    if tracer is None:
        return None
    return RpcSpan(method, metadata, request_id)
