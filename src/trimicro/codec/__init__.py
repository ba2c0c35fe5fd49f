"""Hardened CBOR (default) and JSON codecs, and attrs/cattrs structuring."""

from ._cbor import cbor_dumps as cbor_dumps
from ._cbor import cbor_loads as cbor_loads
from ._errors import CodecError as CodecError
from ._limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._limits import Limits as Limits

__all__ = ["DEFAULT_LIMITS", "CodecError", "Limits", "cbor_dumps", "cbor_loads"]
