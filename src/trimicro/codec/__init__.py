"""Hardened CBOR (default) and JSON codecs, cattrs structuring, and schemas from type hints."""

from ._cbor import cbor_dumps as cbor_dumps
from ._cbor import cbor_loads as cbor_loads
from ._codec import CBOR as CBOR
from ._codec import JSON as JSON
from ._codec import Codec as Codec
from ._codec import codec_for as codec_for
from ._errors import CodecError as CodecError
from ._json import json_dumps as json_dumps
from ._json import json_loads as json_loads
from ._limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._limits import Limits as Limits
from ._schema import schema_of as schema_of
from ._schema import template_of as template_of
from ._structure import structure as structure
from ._structure import unstructure as unstructure

__all__ = [
    "CBOR",
    "DEFAULT_LIMITS",
    "JSON",
    "Codec",
    "CodecError",
    "Limits",
    "cbor_dumps",
    "cbor_loads",
    "codec_for",
    "json_dumps",
    "json_loads",
    "schema_of",
    "structure",
    "template_of",
    "unstructure",
]
