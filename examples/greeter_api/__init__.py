"""The seed's end-to-end flow: an API service at the edge in front of the greeter.

    GET /greeter/say/hello?name=John
      → the gateway's `api` handler: service trimicro.api.greeter, endpoint Say.Hello,
        an api.Request {method, path, header, get, post, body, url}
      → this service parses it and calls the RPC service `greeter` (examples.greeter)
      → HelloResponse back, translated into an api.Response {status_code, header, body}
      → the gateway answers the HTTP client.

Terminal 1:  trimicro run examples.greeter:service
Terminal 2:  trimicro run examples.greeter_api:service
Terminal 3:  trimicro api --handler api
Terminal 4:  curl 'http://127.0.0.1:8080/greeter/say/hello?name=John'
             {"message": "Hello John"}
"""

from __future__ import annotations

import trimicro
from examples.greeter import HelloRequest, HelloResponse
from trimicro import errors
from trimicro.gateway import api

service = trimicro.Service("trimicro.api.greeter", version="1.0.0")


@service.endpoint("Say.Hello")
async def hello(req: api.Request) -> api.Response:
    name = req.query("name") or req.form("name")
    if not name:
        raise errors.bad_request("the name query parameter is missing")
    client = trimicro.current_client()
    reply = await client.call("greeter", "Say.Hello", HelloRequest(name), response=HelloResponse)
    return api.Response.json({"message": reply.msg})


if __name__ == "__main__":
    trimicro.run(service)
