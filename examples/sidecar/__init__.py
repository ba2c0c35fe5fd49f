"""A non-Python app joins the services through `trimicro sidecar`.

`app.py` stands in for an app written in any language: a plain HTTP server (Python's
`http.server`, no trimicro) with a health check and one JSON endpoint. The sidecar registers
it as the service `hello` while `/health` answers 2xx, and turns calls of `Say.Hello` into
`POST /say/hello` on the app.

Terminal 1 (the app)::

    python -m examples.sidecar.app --port 9000

Terminal 2 (its sidecar; `--healthcheck-interval` defaults to 10 s)::

    trimicro sidecar --server-name hello --server-address 127.0.0.1:9000 \\
        --healthcheck http://127.0.0.1:9000/health --endpoint Say.Hello

Terminal 3 (anyone)::

    trimicro call hello Say.Hello '{"name": "Ann"}'       # → {"msg": "Hello Ann"}
    trimicro call hello Say.Hello '{"name": ""}'          # → exit 1, 400 from hello
    curl -s localhost:8081/registry?service=hello         # the app's record
    curl -s localhost:8081/rpc -H 'Content-Type: application/json' \
        -d '{"service": "hello", "endpoint": "Say.Hello", "request": {"name": "Bob"}}'
    trimicro subscribe events &                                   # a subscriber, then
    curl -s 'localhost:8081/broker?topic=events' -d '{"id": 1}'   # publish to it

Stop the app (Ctrl-C in terminal 1): within one health-check interval `trimicro services`
no longer lists `hello`; start it again and it is back.
"""
