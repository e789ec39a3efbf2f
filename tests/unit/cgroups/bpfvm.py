"""A tiny eBPF interpreter for the opcodes the device filter uses, decoding the encoded bytes
(not the `Insn` objects), with the kernel's semantics: 64-bit registers, 32-bit ALU ops
zero-extend their result, immediates of 64-bit compares are sign-extended. It lets unit tests
ask the program for a verdict on any (type, major, minor, access) without root; the
integration tests ask the kernel the same questions.
"""
from __future__ import annotations

import struct

from runtime.cgroups import devprog as p

MASK64 = 2**64 - 1
MASK32 = 2**32 - 1


def _sext(imm: int) -> int:
    return imm & MASK64  # a signed 32-bit immediate seen as a 64-bit value


def run(code: bytes, dev_type: int, major: int, minor: int, access: int, limit: int = 10_000) -> int:
    """r0 at exit, for ctx {access_type = access << 16 | dev_type, major, minor}."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    insns = [struct.unpack_from("<BBhi", code, off) for off in range(0, len(code), 8)]
    regs = [0] * 11
    regs[1] = -1  # the ctx pointer: only loads through it are allowed
    pc = steps = 0
    while True:
        steps += 1
        assert steps < limit, "the program loops"
        assert 0 <= pc < len(insns), f"pc {pc} outside the program"
        code_, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code_ == p.LDX_W:
            assert regs[src] == -1 and off in (0, 4, 8), "only ctx fields can be loaded"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code_ == p.ALU32_MOV_K:
            regs[dst] = imm & MASK32
        elif code_ == p.ALU32_MOV_X:
            regs[dst] = regs[src] & MASK32
        elif code_ == p.ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & MASK32
        elif code_ == p.ALU32_RSH_K:
            regs[dst] = ((regs[dst] & MASK32) >> imm) & MASK32
        elif code_ == p.JNE_K:
            if regs[dst] != _sext(imm):
                pc += off
        elif code_ == p.JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif code_ == p.JSET_K:
            if regs[dst] & _sext(imm):
                pc += off
        elif code_ == p.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code_:#04x} at {pc - 1}")
