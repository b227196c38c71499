"""schemathesis hooks for .ci/schemathesis.sh.

No query parameter of this API is an object, and the HTTP client schemathesis uses cannot put an
object in a query string: a negative case that replaces a parameter with one reaches the server
as `?name=` (nothing to expand), which the API's conventions read as "parameter absent" - a valid
request, whatever the fuzzer meant by it. So does a negative case that replaces an integer or an
array by the empty string. Such cases say nothing about spec or server, so they are dropped (with
the few positive cases that send an empty value, which mean the same as leaving it out). Every
other mutation of a query parameter (wrong scalars, arrays, which are sent as repeated parameters
and refused) stays.

The generating hooks for schedules and workflows are further down, with their reasons.
"""

import hashlib
import json
import re
import zlib

import schemathesis


def _reads_as_absent(value):
    # An object has nothing to expand; an empty value is absent by the API's conventions, so a
    # negative case that empties an integer or array parameter (`?limit=`) is a valid request.
    return isinstance(value, dict) or value == "" or value == [""]


@schemathesis.hook
def filter_query(context, query):
    return not any(_reads_as_absent(value) for value in (query or {}).values())


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



# Schedules and workflows have rules the spec can only state in words: a schedule's `expression`
# is a cron pattern or `every <interval>` and its `timezone` an IANA zone name; a workflow's node
# keys are unique and its edges name those keys, with no self-edge, no repeated edge and no cycle.
# A schema-valid string is almost never a cron pattern, and random edges almost always break the
# graph rules, so positive cases are made valid here, by the server's own grammar: each generated
# expression or zone is replaced by one of real ones (picked by the generated value, so runs stay
# repeatable), duplicate keys are renamed, and each edge is pointed from an earlier node to a later
# one. Only values that already satisfy the schema are touched, and only in positive cases (the
# rewritten values satisfy it too): a negative case keeps the violation the fuzzer put in, and the
# server must still refuse it.
EXPRESSIONS = [
    "0 6 * * *",
    "*/5 * * * *",
    "30 2 * * 1-5",
    "15 */2 * * * *",
    "0 0 1 1 *",
    "@daily",
    "@hourly",
    "@weekly",
    "every 15m",
    "every 1h30m",
    "every 2d",
]
ZONES = ["UTC", "Europe/Stockholm", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"]


def _pick(options, seed):
    text = repr(seed).encode("utf-8", "surrogatepass")
    return options[zlib.crc32(text) % len(options)]


def _is_positive(case):
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return mode is not None and mode.is_positive


def _valid_schedule(body):
    for field, options in (("expression", EXPRESSIONS), ("timezone", ZONES)):
        value = body.get(field)
        if isinstance(value, str) and value:
            body[field] = _pick(options, value)
    return body


def _valid_graph(body):
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not all(
        isinstance(node, dict) and isinstance(node.get("key"), str) for node in nodes
    ):
        return body
    seen = set()
    for index, node in enumerate(nodes):
        if node["key"] in seen:
            node["key"] = next(
                candidate
                for candidate in (f"n{index}_{n}" for n in range(len(nodes) + 1))
                if candidate not in seen
            )
        seen.add(node["key"])
    edges = body.get("edges")
    if not isinstance(edges, list) or not all(isinstance(edge, dict) for edge in edges):
        return body
    keys = [node["key"] for node in nodes]
    kept, pairs = [], set()
    for edge in edges:
        if len(keys) < 2:
            break
        first = zlib.crc32(repr(edge.get("parent")).encode("utf-8", "surrogatepass")) % len(keys)
        second = zlib.crc32(repr(edge.get("child")).encode("utf-8", "surrogatepass")) % len(keys)
        if first == second:
            second = (first + 1) % len(keys)
        parent, child = sorted((first, second))
        if (parent, child) in pairs:
            continue
        pairs.add((parent, child))
        edge["parent"], edge["child"] = keys[parent], keys[child]
        kept.append(edge)
    body["edges"] = kept
    return body


@schemathesis.hook
def map_case(context, case):
    operation = context.operation
    if operation is None or not _is_positive(case) or not isinstance(case.body, dict):
        return case
    path, method = operation.path, operation.method.lower()
    if path in ("/api/schedules", "/api/schedules/{id}") and method in ("post", "patch"):
        case.body = _valid_schedule(case.body)
    elif path == "/api/workflows" and method == "post":
        case.body = _valid_graph(case.body)
    return case


# `Idempotency-Key` (issue #19): the same key with another body, or on another endpoint, is a 422
# by design (the key names one request). The fuzzer draws keys from a small space and reuses them
# across different bodies, which the spec cannot forbid. So, just before each call, a key that
# satisfies the schema is replaced by one derived from the operation and the body: the same
# request keeps the same key (a replay, which must answer as the first time did), another request
# gets another key. A key the schema refuses (empty, too long, not visible ASCII) is left as it is,
# so the 400 for it is still checked. This hook runs in every phase, coverage included.
_VISIBLE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    name = next((n for n in headers if n.lower() == "idempotency-key"), None)
    if name is None or not isinstance(headers[name], str) or not _VISIBLE_KEY.match(headers[name]):
        return
    request = json.dumps([case.method, case.path, case.body], sort_keys=True, default=str)
    headers[name] = "st-" + hashlib.sha256(request.encode()).hexdigest()[:32]
