"""Properties: detection never fails untyped on any input; valid pointers survive a round trip."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sample_messages import FORMATS, load_sample, sample_names

from offload_core.detect import detect
from offload_core.errors import PointerError
from offload_core.formats.aws import AwsFormat
from offload_core.formats.native import NativeFormat
from offload_core.message import Attribute
from offload_core.pointer import Pointer

MARKERS = ["ExtendedPayloadSize", "SQSLargePayloadSize", "S3MessageBodyKey"]
JSON_SAMPLES = [
    json.loads(load_sample(name)[0]) for name in sample_names() if name != "inline-text"
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
attributes = st.dictionaries(
    st.sampled_from(MARKERS) | st.text(max_size=10),
    st.builds(
        Attribute,
        st.sampled_from(["Number", "String", "Binary", "Number.int"]),
        st.text(max_size=20) | st.binary(max_size=8) | st.integers(-5, 2**60).map(str),
    ),
    max_size=3,
)


def _mutate(value: Any, data: st.DataObject) -> Any:
    """A sample pointer with some of its members replaced, removed or added."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            choice = data.draw(st.sampled_from(["keep", "keep", "replace", "drop", "recurse"]))
            if choice == "keep":
                out[key] = item
            elif choice == "replace":
                out[key] = data.draw(json_values)
            elif choice == "recurse":
                out[key] = _mutate(item, data)
        out.update(data.draw(st.dictionaries(st.text(max_size=8), json_values, max_size=1)))
        return out
    if isinstance(value, list):
        return [_mutate(item, data) for item in value] + data.draw(
            st.lists(json_values, max_size=1)
        )
    return data.draw(st.just(value) | json_values)


@st.composite
def pointerish(draw: st.DrawFn) -> str:
    """Bodies near a real pointer of some dialect: mutated, re-spaced, perhaps cut short."""
    text = json.dumps(
        _mutate(draw(st.sampled_from(JSON_SAMPLES)), draw(st.data())),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
        ensure_ascii=draw(st.booleans()),
    )
    text = text if draw(st.booleans()) else text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 3)) == 0:
        attrs = {
            name: {"Type": "Number", "Value": "5"}
            for name in draw(st.sets(st.sampled_from(MARKERS)))
        }
        text = json.dumps(
            {"Type": "Notification", "TopicArn": "arn", "Message": text, "MessageAttributes": attrs}
        )
    return text


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary() | pointerish(), attributes)
def test_detect_returns_a_pointer_none_or_pointer_error(body: str | bytes, attrs: Any) -> None:
    try:
        result = detect(body, attrs, FORMATS)
    except PointerError:
        return
    assert result is None or isinstance(result, Pointer)


# -- round trips ----------------------------------------------------------------------------

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,31}", fullmatch=True)
digests = st.from_regex(r"[0-9a-f]{1,256}", fullmatch=True)
sizes = st.integers(0, 2**53)
url_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200)
expiries = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)
integrity = st.tuples(st.none(), st.none()) | st.tuples(names, digests)


@st.composite
def native_pointers(draw: st.DrawFn) -> Pointer:
    scheme = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,10}", fullmatch=True))
    checksum, digest = draw(integrity)
    return Pointer(
        f"{scheme}://{draw(url_text)}",
        size=draw(sizes),
        stored_size=draw(st.none() | sizes),
        codec=draw(names),
        checksum=checksum,
        digest=digest,
        content_type=draw(st.none() | st.from_regex(r"[\x20-\x7e]{1,255}", fullmatch=True)),
        expires=draw(st.none() | expiries),
    )


@settings(max_examples=200, deadline=None)
@given(native_pointers())
def test_native_round_trip(pointer: Pointer) -> None:
    encoded = NativeFormat().encode(pointer)
    assert detect(encoded.body, encoded.attributes, FORMATS) == pointer


buckets = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True).filter(
    lambda b: ".." not in b and not b.replace(".", "").isdigit()
) | st.sampled_from(
    [
        "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap",
        "arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap",
    ]
)
keys = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1
).filter(lambda k: len(k.encode()) <= 1024)


@settings(max_examples=200, deadline=None)
@given(buckets, keys, st.none() | sizes, integrity)
def test_aws_round_trip(
    bucket: str, key: str, size: int | None, checksum_digest: tuple[str | None, str | None]
) -> None:
    checksum, digest = checksum_digest
    pointer = Pointer(
        f"s3://{bucket}/{key}", size=size, checksum=checksum, digest=digest, dialect="aws"
    )
    encoded = AwsFormat().encode(pointer)
    assert detect(encoded.body, encoded.attributes, FORMATS) == pointer
