"""Writes pickle bytes of plain data and global references without importing what they name.

nnU-Net reads its post-processing as a pickle of ``(functions, kwargs)``; we never unpickle (files are data) but we
write that file so nnU-Net's own ``nnUNetv2_apply_postprocessing`` can use our result. :func:`dumps` emits protocol 4
opcodes (``PROTO``, one ``FRAME``, ``STACK_GLOBAL``, ``MEMOIZE``/``BINGET``, ``APPEND(S)``, ``SETITEM(S)``,
``TUPLE1-3``) for ``None``, bools, ints, floats, strings, lists, tuples, dicts and :class:`GlobalReference`, byte for
byte as CPython's pickler writes the same values, with two differences that never change what is read: the whole
pickle is one frame (CPython starts a new frame every 64 KiB), and equal strings are written once and referenced
after (CPython does so for the same string object, which covers the repeated keys of our files).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["GlobalReference", "dumps"]

_PROTO, _FRAME, _STOP, _MEMOIZE = b"\x80", b"\x95", b".", b"\x94"
_NONE, _NEWTRUE, _NEWFALSE = b"N", b"\x88", b"\x89"
_BININT1, _BININT2, _BININT, _LONG1, _BINFLOAT = b"K", b"M", b"J", b"\x8a", b"G"
_SHORT_BINUNICODE, _BINUNICODE, _BINUNICODE8 = b"\x8c", b"X", b"\x8d"
_STACK_GLOBAL, _BINGET, _LONG_BINGET = b"\x93", b"h", b"j"
_MARK, _EMPTY_LIST, _APPEND, _APPENDS = b"(", b"]", b"a", b"e"
_EMPTY_DICT, _SETITEM, _SETITEMS = b"}", b"s", b"u"
_EMPTY_TUPLE, _TUPLE, _TUPLES = b")", b"t", {1: b"\x85", 2: b"\x86", 3: b"\x87"}
_BATCHSIZE = 1000  # CPython's batch of APPENDS / SETITEMS
_FRAME_SIZE_MIN = 4


@dataclass(frozen=True)
class GlobalReference:
    """A module-level object by name (a function or class), pickled as a reference that the reader resolves.

    Args:
        module: e.g. ``"nnunetv2.postprocessing.remove_connected_components"``.
        name: the qualified name in the module.
    """

    module: str
    name: str


class _Writer:
    """Emits opcodes into ``out``; ``memo`` maps what may be referenced again to its memo index."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.memo: dict[Any, int] = {}
        self.memo_size = 0

    def memoize(self, key: Any = None) -> None:
        if key is not None:
            self.memo[key] = self.memo_size
        self.memo_size += 1
        self.out += _MEMOIZE

    def get(self, key: Any) -> bool:
        if key not in self.memo:
            return False
        index = self.memo[key]
        self.out += _BINGET + bytes([index]) if index < 256 else _LONG_BINGET + struct.pack("<I", index)
        return True

    def save(self, obj: Any) -> None:
        if obj is None:
            self.out += _NONE
        elif obj is True or obj is False:
            self.out += _NEWTRUE if obj else _NEWFALSE
        elif type(obj) is int:
            self.save_int(obj)
        elif type(obj) is float:
            self.out += _BINFLOAT + struct.pack(">d", obj)
        elif type(obj) is str:
            self.save_str(obj)
        elif type(obj) is list:
            self.save_list(obj)
        elif type(obj) is tuple:
            self.save_tuple(obj)
        elif type(obj) is dict:
            self.save_dict(obj)
        elif isinstance(obj, GlobalReference):
            self.save_global(obj)
        else:
            raise TypeError(f"cannot write {type(obj).__name__} values to a pickle (plain data only): {obj!r}")

    def save_int(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += _BININT1 + bytes([value])
        elif 0 <= value < 65536:
            self.out += _BININT2 + struct.pack("<H", value)
        elif -(2 ** 31) <= value < 2 ** 31:
            self.out += _BININT + struct.pack("<i", value)
        else:  # two's complement, little endian, shortest form (pickle.encode_long)
            encoded = value.to_bytes((value.bit_length() >> 3) + 1, "little", signed=True)
            if value < 0 and len(encoded) > 1 and encoded[-1] == 0xFF and (encoded[-2] & 0x80):
                encoded = encoded[:-1]
            if len(encoded) >= 256:
                raise ValueError(f"integer too large to write: {value.bit_length()} bits")
            self.out += _LONG1 + bytes([len(encoded)]) + encoded

    def save_str(self, value: str) -> None:
        if self.get(("str", value)):
            return
        encoded = value.encode("utf-8", "surrogatepass")
        if len(encoded) < 256:
            self.out += _SHORT_BINUNICODE + bytes([len(encoded)]) + encoded
        elif len(encoded) <= 0xFFFFFFFF:
            self.out += _BINUNICODE + struct.pack("<I", len(encoded)) + encoded
        else:
            self.out += _BINUNICODE8 + struct.pack("<Q", len(encoded)) + encoded
        self.memoize(("str", value))

    def _batched(self, items: list, write_one: Callable[[Any], None], single: bytes, many: bytes) -> None:
        for start in range(0, len(items), _BATCHSIZE):
            batch = items[start:start + _BATCHSIZE]
            if len(batch) == 1:
                write_one(batch[0])
                self.out += single
            else:
                self.out += _MARK
                for item in batch:
                    write_one(item)
                self.out += many

    def save_list(self, value: list) -> None:
        self.out += _EMPTY_LIST
        self.memoize()
        self._batched(value, self.save, _APPEND, _APPENDS)

    def save_dict(self, value: dict) -> None:
        self.out += _EMPTY_DICT
        self.memoize()

        def item(key_value: tuple) -> None:
            self.save(key_value[0])
            self.save(key_value[1])

        self._batched(list(value.items()), item, _SETITEM, _SETITEMS)

    def save_tuple(self, value: tuple) -> None:
        if not value:
            self.out += _EMPTY_TUPLE
            return
        if len(value) > 3:
            self.out += _MARK
        for item in value:
            self.save(item)
        self.out += _TUPLES.get(len(value), _TUPLE)
        self.memoize()

    def save_global(self, ref: GlobalReference) -> None:
        if self.get(("global", ref)):
            return
        self.save_str(ref.module)
        self.save_str(ref.name)
        self.out += _STACK_GLOBAL
        self.memoize(("global", ref))


def dumps(obj: Any) -> bytes:
    """Pickle protocol 4 bytes of ``obj``.

    Args:
        obj: ``None``, bool, int, float, str, and lists, tuples and dicts of them, and :class:`GlobalReference`.

    Returns:
        The bytes ``pickle.dumps(obj, protocol=4)`` gives for the same values (a :class:`GlobalReference` standing for
        the object it names) when they take less than 64 KiB (see the module docstring).

    Raises:
        TypeError: for any other type.
    """
    writer = _Writer()
    writer.save(obj)
    writer.out += _STOP
    body = bytes(writer.out)
    framed = _FRAME + struct.pack("<Q", len(body)) + body if len(body) >= _FRAME_SIZE_MIN else body
    return _PROTO + bytes([4]) + framed
