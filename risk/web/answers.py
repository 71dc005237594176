"""What the API takes in and gives out: strict JSON (orjson), request bodies bounded at 16 MiB even when
sent in chunks, positive whole-number query arguments, and no absolute server path in any answer."""

import io
import re

import orjson
from flask import Request, Response, abort, request
from flask.json.provider import JSONProvider
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from risk.config import Config
from risk.logs import relative_paths

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_FORM_PARTS = 1_000  # a form upload: its parts, and a field's bytes in memory (a file part goes to disk)
MAX_FORM_FIELD_BYTES = 500_000
TOO_LARGE = (
    f"the request is too large: a body may hold at most 16 MiB ({MAX_BODY_BYTES:,} bytes), a form at most"
    f" {MAX_FORM_PARTS:,} parts, a form field (not a file) at most {MAX_FORM_FIELD_BYTES:,} bytes"
)
ASCII_NUMBER = re.compile(r"[0-9]{1,12}")


class StrictJSON(JSONProvider):
    """orjson: fast, and strict both ways (no NaN or Infinity in or out, nesting bounded)."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(
            orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), mimetype="application/json"
        )


class CappedBody(io.RawIOBase):
    """A request body of unknown length read up to `limit` bytes: a byte more is a 413."""

    def __init__(self, stream, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.stream.read(min(len(buffer), self.limit + 1 - self.count))
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        self.count += len(data)
        if self.count > self.limit:
            raise RequestEntityTooLarge(TOO_LARGE)
        buffer[: len(data)] = data
        return len(data)


class BoundedRequest(Request):
    """Flask's request, but a chunked body (no Content-Length) over its limit is a 413: Werkzeug stops
    reading it at the limit without a word, and a body padded past it was answered 200. An urlencoded form
    (the login's) is read whole at once, so its whole body is held to a form field's limit."""

    @property
    def max_content_length(self) -> int:
        if self.mimetype == "application/x-www-form-urlencoded":
            return MAX_FORM_FIELD_BYTES
        return super().max_content_length or MAX_BODY_BYTES

    @cached_property
    def stream(self):
        if self.content_length is None and self.environ.get("wsgi.input_terminated"):
            return io.BufferedReader(CappedBody(self.environ["wsgi.input"], self.max_content_length))
        return get_input_stream(self.environ, max_content_length=self.max_content_length)


def public(message: str, config: Config) -> str:
    """A message for a caller: absolute server paths become paths relative to the project, or a name
    (as in the log: logs.relative_paths)."""
    return relative_paths(message, config.config_path.parent)


def public_data(value, config: Config):
    """`value` (dicts, lists, text) with every absolute server path in its text made relative, or a name."""
    if isinstance(value, str):
        return public(value, config)
    if isinstance(value, dict):
        return {key: public_data(item, config) for key, item in value.items()}
    if isinstance(value, list):
        return [public_data(item, config) for item in value]
    return value


def int_arg(name: str, default: int | None, highest: int) -> int | None:
    """A positive integer query argument up to `highest`; abort(400) naming it otherwise."""
    text = request.args.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() and int() also take '²', '١' or '５', and int() refuses 4,301 digits.
    if not ASCII_NUMBER.fullmatch(text) or not 1 <= int(text) <= highest:
        abort(400, f"'{name}' must be a whole number from 1 to {highest:,}, got {text[:20]!r}")
    return int(text)
