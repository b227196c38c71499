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


# A schedule's `expression` (cron or `every <interval>`), `timezone` (an IANA name) and
# `task_type` (a registered handler) are grammars and registries the spec states in words only:
# a random string is schema-valid and rightly refused. Where the fuzzer put a string there, it is
# replaced by a valid one so the case exercises everything else; a value of the wrong type (a
# negative case) is left alone. The parsing rules themselves are tested in task-runtime's
# schedules tests and crates/task-http/tests/it/schedules.rs.
VALID_SCHEDULE_STRINGS = {"expression": "every 1h", "timezone": "UTC", "task_type": "noop"}


@schemathesis.hook
def map_body(context, body):
    if context.operation.path.startswith("/api/schedules") and isinstance(body, dict):
        for field, valid in VALID_SCHEDULE_STRINGS.items():
            if isinstance(body.get(field), str):
                body[field] = valid
    return body
