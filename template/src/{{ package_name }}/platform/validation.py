"""Types for values the service stores and answers with: refused at the edge if they would not last.

Some values pass Pydantic's usual checks yet cannot be stored, or come back
different, or break every later read of the row that holds them:

- text with a NUL character: PostgreSQL refuses it in `text` and `jsonb`;
- text with an unpaired UTF-16 surrogate (JSON `"\\ud800"`): it has no UTF-8
  form, so the database garbles it or the response that returns it fails;
- `NaN`, `Infinity` and numbers too large for a double (`1e309` parses as
  infinity): they are not JSON, PostgreSQL refuses them and SQLite stores null;
- numbers beyond +/-(2**53 - 1): most JSON readers (JavaScript, SQLite's JSON
  functions) lose the last digits of such integers, as RFC 7493 (I-JSON)
  warns, and PostgreSQL's `jsonb` gives a float such as `1e300` back as an
  integer that is not equal to it;
- deep nesting and large values: serialisers stop at a recursion depth, and
  one field should not fill a row.

Declare a request field with one of these types, and such a value is a 422
`validation_error` naming the field, and the place inside it:

    class OrderCreate(BaseModel):
        note: StorableText
        reference: Annotated[str, StorableString(min_length=1, max_length=200)]
        attributes: StorableJsonObject
        tags: Annotated[dict[str, Any], StorableJson(max_depth=2, max_bytes=4096)]

For values that do not come from a request, such as what a job handler
returns, call `check_storable_json` (it raises `UnstorableValueError`), and
`storable_text` to make a diagnostic message safe to store.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

# The largest integer every JSON reader holds exactly (RFC 7493, section 2.2); numbers beyond it
# are refused.
MAX_SAFE_INTEGER = 2**53 - 1
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_BYTES = 65_536

ValueT = TypeVar("ValueT")


class UnstorableValueError(ValueError):
    """A value that could not be stored and read back unchanged.

    `error_type` is a stable name for the reason; `pointer` is where in the
    value it is, as a JSON Pointer (RFC 6901), "" for the value itself.
    """

    def __init__(self, error_type: str, reason: str, pointer: str = "") -> None:
        self.error_type = error_type
        self.reason = reason
        self.pointer = pointer
        super().__init__(f"{reason} (at {pointer})" if pointer else reason)


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored ("must not contain ..."), or None if it can."""
    if "\x00" in text:
        return "must not contain a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain an unpaired UTF-16 surrogate"
    return None


def check_storable_text(text: str) -> str:
    """`text`, or `UnstorableValueError` if it cannot be stored."""
    problem = text_problem(text)
    if problem is not None:
        raise UnstorableValueError("unstorable_text", f"text {problem}")
    return text


def storable_text(text: str) -> str:
    """`text` with each NUL and unpaired surrogate replaced by U+FFFD: for messages, not data."""
    if text_problem(text) is None:
        return text
    return "".join(
        "\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text
    )


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def check_storable_json(
    value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> None:
    """Raise `UnstorableValueError` unless `value` is JSON that is stored and read back unchanged.

    JSON here means what `json.loads` returns: dicts with string keys, lists,
    strings, integers and finite floats within +/-`MAX_SAFE_INTEGER`,
    booleans and None. `max_depth` bounds the nesting of dicts and lists (the value
    itself is depth 1); `max_bytes` bounds its compact UTF-8 JSON form.
    """
    # Iterative, so that no nesting depth can exhaust the interpreter's stack.
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, pointer, depth = pending.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            if isinstance(item, float) and not math.isfinite(item):
                raise UnstorableValueError("unstorable_number", "numbers must be finite", pointer)
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise UnstorableValueError(
                    "unstorable_number",
                    "numbers must be within +/-(2**53 - 1); send larger ones as strings",
                    pointer,
                )
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise UnstorableValueError("unstorable_text", f"text {problem}", pointer)
        elif isinstance(item, list | dict):
            if depth + 1 > max_depth:
                raise UnstorableValueError(
                    "json_too_deep", f"nesting must be at most {max_depth} levels deep", pointer
                )
            if isinstance(item, list):
                pending.extend(
                    (element, f"{pointer}/{index}", depth + 1) for index, element in enumerate(item)
                )
                continue
            for key, element in item.items():
                if not isinstance(key, str):
                    raise UnstorableValueError(
                        "unstorable_json", "object keys must be strings", pointer
                    )
                problem = text_problem(key)
                if problem is not None:
                    # The key itself cannot be shown: the pointer names its object.
                    raise UnstorableValueError("unstorable_text", f"keys {problem}", pointer)
                pending.append((element, f"{pointer}/{_pointer_token(key)}", depth + 1))
        else:
            raise UnstorableValueError(
                "unstorable_json", f"{type(item).__name__} is not a JSON value", pointer
            )
    if max_bytes is not None:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > max_bytes:
            raise UnstorableValueError(
                "json_too_large", f"the value must be at most {max_bytes} bytes as JSON"
            )


def _as_validation_error(check: Callable[[ValueT], object], value: ValueT) -> ValueT:
    try:
        check(value)
    except UnstorableValueError as error:
        raise PydanticCustomError(error.error_type, "{reason}", {"reason": str(error)}) from None
    return value


@dataclass(frozen=True)
class StorableJson:
    """Annotated metadata: the field's value must pass `check_storable_json` with these bounds."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_bytes: int | None = DEFAULT_MAX_BYTES

    def __get_pydantic_core_schema__(
        self, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source_type))

    def validate(self, value: ValueT) -> ValueT:
        return _as_validation_error(self._check, value)

    def _check(self, value: object) -> None:
        check_storable_json(value, max_depth=self.max_depth, max_bytes=self.max_bytes)


@dataclass(frozen=True)
class StorableString:
    """Annotated metadata: a string that passes `check_storable_text`, with optional length bounds.

    Give the bounds here rather than in `Field`, so that a too-long string gets
    Pydantic's usual `string_too_long` error.
    """

    min_length: int | None = None
    max_length: int | None = None

    def __get_pydantic_core_schema__(
        self, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        text = core_schema.str_schema(min_length=self.min_length, max_length=self.max_length)
        return core_schema.no_info_after_validator_function(self.validate, text)

    def validate(self, text: str) -> str:
        return _as_validation_error(check_storable_text, text)


# A JSON object of any shape that is stored and read back unchanged.
StorableJsonObject = Annotated[dict[str, Any], StorableJson()]
# Text without NUL characters or unpaired surrogates, of any length.
StorableText = Annotated[str, StorableString()]
