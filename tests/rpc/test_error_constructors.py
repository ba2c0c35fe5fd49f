"""Every error constructor (DESIGN.md §3, go-micro's errors package): its HTTP code and status
phrase, the id defaulting to the serving service, and the trip to a caller unchanged."""

from __future__ import annotations

import pytest

import trimicro
from trimicro import errors
from trimicro.testing import open_cluster

CONSTRUCTORS = [
    (errors.bad_request, 400, "Bad Request"),
    (errors.unauthorized, 401, "Unauthorized"),
    (errors.forbidden, 403, "Forbidden"),
    (errors.not_found, 404, "Not Found"),
    (errors.method_not_allowed, 405, "Method Not Allowed"),
    (errors.timeout, 408, "Request Timeout"),
    (errors.conflict, 409, "Conflict"),
    (errors.too_many_requests, 429, "Too Many Requests"),
    (errors.internal_server_error, 500, "Internal Server Error"),
    (errors.unavailable, 503, "Service Unavailable"),
]


@pytest.mark.parametrize(("make", "code", "status"), CONSTRUCTORS)
def test_code_status_and_explicit_id(make, code: int, status: str) -> None:
    error = make("the detail", id="go.micro.srv.x")
    assert (error.id, error.code, error.detail, error.status) == (
        "go.micro.srv.x", code, "the detail", status,
    )  # fmt: skip
    assert errors.Error.from_dict(error.to_dict()).to_dict() == error.to_dict()
    assert str(error) == f"{code} {status} from go.micro.srv.x: the detail"


@pytest.mark.parametrize(("make", "code", "status"), CONSTRUCTORS)
async def test_raised_in_a_handler_each_reaches_the_caller_as_is(
    make, code: int, status: str
) -> None:
    service = trimicro.Service("failing")

    @service.endpoint("Fail.Now")
    async def fail(req: None) -> None:
        raise make("no luck")  # no id: the serving service's name

    async with open_cluster(service) as cluster:
        with pytest.raises(errors.Error) as info:
            await cluster.client.call("failing", "Fail.Now", retries=0)
    assert (info.value.id, info.value.code, info.value.status) == ("failing", code, status)
    assert info.value.detail == "no luck"
