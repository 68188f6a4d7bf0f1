"""The server interceptor that authenticates and authorizes every TinyForge call.

For each ``/tinyforge.*`` method it wraps the handler so that, before the servicer runs:
the API key is read from metadata (``x-api-key: <key>`` or ``authorization: Bearer <key>``,
exactly one), resolved to a :class:`~tinyforge.auth.Principal`, the request's target resolved
by the method's rule in :data:`tinyforge.auth.POLICY` and checked. While the servicer runs, the
principal is available through :func:`current_principal`. Domain errors raised anywhere in the
call become gRPC statuses here (one place), and mutating calls get an audit row. It also
opens each call's SERVER span (:class:`tinyforge.telemetry.ServerSpans`): one interceptor,
one handler wrap per call.

Health checking and reflection are public; a TinyForge method without a rule is denied.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from services.common import audit
from services.common.errors import abort_with
from tinyforge.accounts.validation import check_id
from tinyforge.auth import (
    POLICY,
    Principal,
    Rule,
    Scope,
    Target,
    authenticate,
    authorize,
    cache,
    resolve_target,
)
from tinyforge.context import PlatformContext
from tinyforge.errors import NotFound, PermissionDenied, TinyForgeError, Unauthenticated
from tinyforge.store.db import Database
from tinyforge.telemetry import ServerSpans

log = logging.getLogger(__name__)

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"


@dataclass
class CallState:
    """What the interceptor knows about the call in progress."""

    method: str
    rule: Rule | None
    principal: Principal | None = None
    target: Target | None = None
    status: str = "UNKNOWN"
    notes: list[str] = field(default_factory=list)


_CALL: contextvars.ContextVar[CallState | None] = contextvars.ContextVar(
    "tinyforge_call", default=None
)


def current_call() -> CallState:
    """State of the call being served (only inside a servicer method)."""
    state = _CALL.get()
    if state is None:
        raise RuntimeError("no TinyForge call in progress")
    return state


def current_principal() -> Principal:
    """The authenticated caller (only inside a servicer method)."""
    principal = current_call().principal
    if principal is None:
        raise Unauthenticated("call was not authenticated")
    return principal


def current_target() -> Target:
    """The organization/project the call is about, as resolved by its policy rule."""
    target = current_call().target
    if target is None:
        raise PermissionDenied("call has no authorized target")
    return target


def audit_note(text: str) -> None:
    """Add a note (e.g. 'created project 7') to the audit row of the current call."""
    current_call().notes.append(text)


def api_key_from_metadata(metadata: Any) -> str:
    """The one API key in the call metadata; Unauthenticated if none, several or malformed."""
    keys: list[str] = []
    for item in metadata or ():
        name, value = item[0].lower(), item[1]
        if name == API_KEY_HEADER:
            keys.append(value if isinstance(value, str) else "")
        elif name == AUTHORIZATION_HEADER:
            scheme, _, token = (value if isinstance(value, str) else "").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated(
                    "authorization metadata must be 'Bearer <api key>'", field=AUTHORIZATION_HEADER
                )
            keys.append(token.strip())
    if not keys:
        raise Unauthenticated(
            "missing API key: send it as 'x-api-key: <key>' or 'authorization: Bearer <key>' "
            "metadata",
            field=API_KEY_HEADER,
        )
    if len(keys) > 1:
        raise Unauthenticated(
            f"{len(keys)} API keys in the metadata (x-api-key / authorization); send exactly one",
            field=API_KEY_HEADER,
        )
    return keys[0].strip()


class LazySession:
    """A ``Database.session()`` opened only when first used: with the key and the project
    served from :mod:`tinyforge.auth.cache`, most calls need no session at all."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cm: Any = None
        self._session: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._cm = self._db.session()
            self._session = self._cm.__enter__()
        return getattr(self._session, name)

    def __enter__(self) -> LazySession:
        return self

    def __exit__(self, *exc: Any) -> Any:
        if self._cm is not None:
            return self._cm.__exit__(*exc)
        return None


def target_of(session: Any, rule: Rule, request: Any, principal: Principal) -> Target:
    """:func:`tinyforge.auth.resolve_target`, with project-scoped targets (the hot path:
    every upload) served from the project cache."""
    if rule.scope == Scope.PROJECT:
        project_id = check_id(getattr(request, rule.field), rule.field)
        facts = cache.project_facts(session, project_id)
        if facts is None:
            raise NotFound(f"project {project_id} does not exist", field=rule.field)
        return Target(facts.org_id, project_id)
    return resolve_target(session, rule, request, principal)


def _status_code(state: CallState, context: grpc.ServicerContext) -> grpc.StatusCode:
    """The gRPC status a call ended with, from the interceptor's record of it."""
    code = getattr(grpc.StatusCode, state.status, None)
    if isinstance(code, grpc.StatusCode):
        return code
    # the servicer aborted by itself (context.abort): ask the context
    code = context.code() if hasattr(context, "code") else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


class AuthInterceptor(grpc.ServerInterceptor):
    """Trace, authenticate, authorize, map errors and audit every TinyForge method."""

    def __init__(self, ctx: PlatformContext, policy: dict[str, Rule] | None = None, *,
                 tracer_provider: Any = None) -> None:
        self.ctx = ctx
        self.policy = POLICY if policy is None else policy
        self.spans = ServerSpans(tracer_provider or ctx.tracer_provider)
        self._wrapped: dict[str, tuple[Any, grpc.RpcMethodHandler]] = {}

    # ------------------------------------------------------------------ decisions
    def _admit(self, state: CallState, request: Any, context: grpc.ServicerContext) -> None:
        secret = api_key_from_metadata(context.invocation_metadata())
        with LazySession(self.ctx.db) as s:
            state.principal = authenticate(s, secret)  # type: ignore[arg-type]
            if state.rule is None:
                raise PermissionDenied(f"{state.method} has no authorization rule; denied")
            if request is not None:
                state.target = target_of(s, state.rule, request, state.principal)
        if state.target is not None:
            authorize(state.principal, state.rule, state.target, state.method)

    def _fail(self, state: CallState, context: grpc.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, TinyForgeError):
            state.status = exc.code
            state.notes.append(exc.message)
            abort_with(context, exc)
        log.exception("internal error in %s", state.method)
        state.status = "INTERNAL"
        state.notes.append(f"{type(exc).__name__}: {exc}")
        context.abort(
            grpc.StatusCode.INTERNAL,
            f"internal error in {state.method}: {type(exc).__name__} (see the server log)",
        )

    def _finish(self, state: CallState) -> None:
        if state.rule is None or not state.rule.mutating:
            return
        p, t = state.principal, state.target
        audit.record(
            self.ctx.db,
            method=state.method,
            status=state.status,
            api_key_id=p.key_id if p else None,
            user_id=p.user_id if p else None,
            org_id=t.org_id if t else (p.org_id if p else None),
            project_id=t.project_id if t else None,
            detail="; ".join(state.notes),
        )

    # ------------------------------------------------------------------ wrapping
    def _unary(
        self, behavior: Callable[..., Any], method: str, rule: Rule | None, streaming_req: bool
    ) -> Callable[..., Any]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            state = CallState(method, rule)
            token = _CALL.set(state)
            span, span_token = self.spans.start(method, context.invocation_metadata())
            try:
                # Client-streaming methods authorize their target from the first message
                # themselves (authorize_request); here only the key is checked.
                self._admit(state, None if streaming_req else request, context)
                response = behavior(request, context)
                state.status = "OK"
                return response
            except Exception as exc:
                if type(exc) is Exception:  # raised by context.abort: status already set
                    state.status = "ABORTED_BY_SERVICER"
                    raise
                self._fail(state, context, exc)
            finally:
                _CALL.reset(token)
                self._finish(state)
                self.spans.finish(span, span_token, _status_code(state, context), state.notes)

        return wrapped

    def _stream(
        self, behavior: Callable[..., Any], method: str, rule: Rule | None, streaming_req: bool
    ) -> Callable[..., Any]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            state = CallState(method, rule)
            token = _CALL.set(state)
            span, span_token = self.spans.start(method, context.invocation_metadata())
            try:
                self._admit(state, None if streaming_req else request, context)
                yield from behavior(request, context)
                state.status = "OK"
            except GeneratorExit:
                state.status = "CANCELLED"
                raise
            except Exception as exc:
                if type(exc) is Exception:
                    state.status = "ABORTED_BY_SERVICER"
                    raise
                self._fail(state, context, exc)
            finally:
                with contextlib.suppress(ValueError):  # generator closed from another context
                    _CALL.reset(token)
                self._finish(state)
                self.spans.finish(span, span_token, _status_code(state, context), state.notes)

        return wrapped

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001, ANN201
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith("/tinyforge."):
            return handler
        # The wrapped handler keeps no per-call state, so it is built once per method (and
        # servicer handler) rather than on every call of the hot upload path.
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        rule = self.policy.get(method)
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, rule, False), **kw
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method, rule, False), **kw
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, rule, True), **kw
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream(handler.stream_stream, method, rule, True), **kw
        )


def authorize_request(ctx: PlatformContext, request: Any) -> Target:
    """For client-streaming methods: authorize the call's target from its first message."""
    state = current_call()
    if state.rule is None or state.principal is None:
        raise PermissionDenied(f"{state.method} has no authorization rule; denied")
    with LazySession(ctx.db) as s:
        state.target = target_of(s, state.rule, request, state.principal)
    authorize(state.principal, state.rule, state.target, state.method)
    return state.target
