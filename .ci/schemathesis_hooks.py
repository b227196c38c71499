"""schemathesis hooks for .ci/schemathesis.sh.

No query parameter of this API is an object, and the HTTP client schemathesis uses cannot put an
object in a query string: a negative case that replaces a parameter with one reaches the server
as `?name=` (nothing to expand), which the API's conventions read as "parameter absent" - a valid
request, whatever the fuzzer meant by it. Such cases say nothing about spec or server, so they are
dropped. Every other mutation of a query parameter (wrong scalars, arrays, which are sent as
repeated parameters and refused) stays.
"""

import schemathesis


@schemathesis.hook
def filter_query(context, query):
    return not any(isinstance(value, dict) for value in (query or {}).values())


# `max_attempts` is refused above the task type's own cap (api.md: "max_attempts above the task
# type's cap"), which is a property of the server's registered handlers, not of the request: the
# spec can only state the task model's limit (100). Every type this server registers has a cap of
# 3, so a generated body asking for more is a valid request the server rightly refuses; such
# bodies are dropped. Bodies at or below the cap, and every other mutation, stay.
ATTEMPT_CAP = 3


def _asks_beyond_the_cap(value):
    if isinstance(value, dict):
        attempts = value.get("max_attempts")
        numeric = isinstance(attempts, (int, float)) and not isinstance(attempts, bool)
        if numeric and attempts > ATTEMPT_CAP:
            return True
        nodes = value.get("nodes")
        return isinstance(nodes, list) and any(_asks_beyond_the_cap(node) for node in nodes)
    return False


@schemathesis.hook
def filter_body(context, body):
    return not _asks_beyond_the_cap(body)

