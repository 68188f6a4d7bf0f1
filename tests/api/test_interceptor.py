"""The server interceptor wraps each method's handler once and keeps no state between calls."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from services.common.auth import AuthInterceptor, current_principal
from tinyforge.auth import Rule, Scope
from tinyforge.context import PlatformContext
from tinyforge.store.models import Role

METHOD = "/tinyforge.v1.Probe/Who"


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _handler(fn: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(fn)


def test_handler_is_wrapped_once_per_method_and_servicer_handler(platform: Any) -> None:
    ctx: PlatformContext = platform.ctx
    icpt = AuthInterceptor(ctx, {METHOD: Rule(Role.GUEST, Scope.ORG)})
    first = _handler(lambda req, context: "a")
    wrapped = icpt.intercept_service(lambda _d: first, _Details(METHOD))
    assert wrapped is not first and wrapped.unary_unary is not first.unary_unary
    # the same servicer handler again: the same wrapped handler, not a new closure per call
    assert icpt.intercept_service(lambda _d: first, _Details(METHOD)) is wrapped
    # a different handler for the method (a re-registered servicer) is wrapped anew
    second = _handler(lambda req, context: "b")
    rewrapped = icpt.intercept_service(lambda _d: second, _Details(METHOD))
    assert rewrapped is not wrapped
    # methods outside the platform are passed through untouched
    health = _handler(lambda req, context: "h")
    assert (
        icpt.intercept_service(lambda _d: health, _Details("/grpc.health.v1.Health/Check"))
        is health
    )


def test_cached_wrapper_authenticates_every_call_afresh(platform: Any) -> None:
    """Two calls through one cached wrapper with different keys see their own caller, and
    a bad key after a good one is still refused."""
    ctx: PlatformContext = platform.ctx
    icpt = AuthInterceptor(ctx, {METHOD: Rule(Role.GUEST, Scope.ORG)})
    a, b = platform.new_tenant(), platform.new_tenant()
    wrapped = icpt.intercept_service(
        lambda _d: _handler(lambda req, context: current_principal().org_id), _Details(METHOD)
    )

    class Ctx:
        def __init__(self, key: str) -> None:
            self.key = key

        def invocation_metadata(self) -> Any:
            return (("x-api-key", self.key),)

        def set_trailing_metadata(self, _md: Any) -> None:
            pass

        def abort(self, code: grpc.StatusCode, details: str) -> None:
            raise RuntimeError(f"{code.name}: {details}")

    assert wrapped.unary_unary(None, Ctx(a.admin_key)) == a.org_id
    assert wrapped.unary_unary(None, Ctx(b.admin_key)) == b.org_id
    with pytest.raises(RuntimeError, match="UNAUTHENTICATED"):
        wrapped.unary_unary(None, Ctx("tf_not-a-key"))
    assert wrapped.unary_unary(None, Ctx(a.admin_key)) == a.org_id
