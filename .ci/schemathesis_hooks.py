"""schemathesis hooks for .ci/schemathesis.sh.

No query parameter of this API is an object, and the HTTP client schemathesis uses cannot put an
object in a query string: a negative case that replaces a parameter with one reaches the server
as `?name=` (nothing to expand), which the API's conventions read as "parameter absent" - a valid
request, whatever the fuzzer meant by it. Such cases say nothing about spec or server, so they are
dropped. Every other mutation of a query parameter (wrong scalars, arrays, which are sent as
repeated parameters and refused) stays.
"""

import time

import schemathesis

# `GET /api/analytics` refuses a range whose `from` is after `to` (api.md, "Analytics"): a rule
# between parameters that the spec states in words only. Generated ranges that break them are valid per the schema and rightly refused, so they
# are dropped; every other mutation (wrong types, out-of-range times, unknown buckets) stays.
BUCKET_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


def _int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _given(query, name):
    """The parameter's value; an empty one counts as absent, as the API's conventions say."""
    value = query.get(name)
    return None if value is None or value == "" else value


def _refused_analytics_range(query):
    width = BUCKET_MS.get(_given(query, "bucket") or "hour")
    now = int(time.time() * 1000)
    to = _int(_given(query, "to")) if _given(query, "to") is not None else now
    start = (
        _int(_given(query, "from"))
        if _given(query, "from") is not None
        else (None if to is None else max(0, to - 86_400_000))
    )
    if width is None or to is None or start is None:
        return False
    return start > to


@schemathesis.hook
def filter_query(context, query):
    query = query or {}
    if any(isinstance(value, dict) for value in query.values()):
        return False
    operation = getattr(context, "operation", None)
    if getattr(operation, "path", None) == "/api/analytics" and _refused_analytics_range(query):
        return False
    return True


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

