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
