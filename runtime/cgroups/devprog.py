"""The cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program assembled from an
allow-list (`devrules.Policy`), instruction by instruction, as runc and crun do.

cgroup v2 has no devices.allow: the kernel runs the BPF programs attached to the task's
cgroup on every mknod(2) and open(2) of a device node, with a pointer to

    struct bpf_cgroup_dev_ctx {
        __u32 access_type;   /* (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_* */
        __u32 major;
        __u32 minor;
    };

in r1, and refuses the access with EPERM when the program returns 0. Our program:

    prologue    r2 = access_type; w3 = w2 >> 16 (access); w2 &= 0xffff (type);
                r4 = major; r5 = minor
    one block   if r2 != TYPE goto next               (the device type)
    per rule    if r3 & ~ACCESS goto next             (omitted when ACCESS is rwm)
                if r4 != MAJOR goto next              (omitted for *)
                if r5 != MINOR goto next              (omitted for *)
                w0 = 1; exit                          (allow)
    epilogue    w0 = 0; exit                          (deny: nothing matched)

Every rule allows, so their order does not change the verdict; they are emitted in the order
given (Docker's defaults first, the busiest nodes before the service's own). The access test
asks whether the request has any bit outside the rule's access (one JSET): as in v1, one rule
must cover the whole request (an O_RDWR open needs a rule with both r and w). Numbers above
2^31 - 1 cannot be a 32-bit immediate of a 64-bit compare (it is sign-extended), so they are
first moved into a register with a 32-bit move (zero-extended) and compared register to
register. An `a` rule makes the program "allow everything" (v1's meaning of `a`).
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.devrules import DeviceRule, Policy

# linux/bpf.h: the bits of bpf_cgroup_dev_ctx.access_type
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
DEV_BLOCK, DEV_CHAR = 1, 2
ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
ALL_ACCESS = ACC_MKNOD | ACC_READ | ACC_WRITE
TYPE_BITS = {"b": DEV_BLOCK, "c": DEV_CHAR}

# Opcodes (class | op | source): BPF_LDX|BPF_MEM|BPF_W, BPF_ALU (32-bit) ops, BPF_JMP (64-bit).
LDX_W = 0x61
ALU32_MOV_K, ALU32_MOV_X, ALU32_AND_K, ALU32_RSH_K = 0xB4, 0xBC, 0x54, 0x74
JNE_K, JNE_X, JSET_K = 0x55, 0x5D, 0x45
EXIT = 0x95

# Registers: r1 = ctx on entry (then a scratch register), r0 = the verdict.
R0, R1, R2, R3, R4, R5 = range(6)
TYPE, ACCESS, MAJOR, MINOR = R2, R3, R4, R5

MAX_INSNS = 4096  # BPF_MAXINSNS: the limit of kernels before 5.2, kept so that every kernel loads it
INSN_SIZE = 8


@dataclass(frozen=True)
class Insn:
    """One eBPF instruction (struct bpf_insn): code, dst:4, src:4, off (s16), imm (s32)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        # Little-endian (x86_64, aarch64): dst in the low nibble of the register byte.
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)


def _imm32(value: int) -> int:
    """`value` (0..2^32-1) as the signed 32-bit immediate with the same bits."""
    return value - 2**32 if value >= 2**31 else value


def _prologue() -> list[Insn]:
    return [
        Insn(LDX_W, R2, R1, 0),  # r2 = ctx->access_type
        Insn(ALU32_MOV_X, R3, R2),  # w3 = w2
        Insn(ALU32_RSH_K, R3, imm=16),  # w3 >>= 16: BPF_DEVCG_ACC_*
        Insn(ALU32_AND_K, R2, imm=0xFFFF),  # w2 &= 0xffff: BPF_DEVCG_DEV_*
        Insn(LDX_W, R4, R1, 4),  # r4 = ctx->major
        Insn(LDX_W, R5, R1, 8),  # r5 = ctx->minor
    ]


def _verdict(allow: bool) -> list[Insn]:
    return [Insn(ALU32_MOV_K, R0, imm=1 if allow else 0), Insn(EXIT)]


def _compare(reg: int, value: int) -> list[Insn]:
    """Tests that jump to the next block when `reg` != `value` (offset patched later)."""
    if value < 2**31:
        return [Insn(JNE_K, reg, imm=value)]
    return [Insn(ALU32_MOV_K, R1, imm=_imm32(value)), Insn(JNE_X, reg, R1)]


def _block(rule: DeviceRule) -> list[Insn]:
    """The instructions of one allow rule: its tests, then "allow"."""
    tests = [Insn(JNE_K, TYPE, imm=TYPE_BITS[rule.type])]
    access = sum(ACCESS_BITS[ch] for ch in rule.access)
    if access != ALL_ACCESS:
        tests.append(Insn(JSET_K, ACCESS, imm=ALL_ACCESS & ~access))
    if rule.major is not None:
        tests += _compare(MAJOR, rule.major)
    if rule.minor is not None:
        tests += _compare(MINOR, rule.minor)
    block = tests + _verdict(True)
    # every jump goes to the first instruction after this block
    return [Insn(i.code, i.dst, i.src, len(block) - n - 1, i.imm)
            if i.code in (JNE_K, JNE_X, JSET_K) else i
            for n, i in enumerate(block)]


class ProgramTooLarge(ValueError):
    pass


def assemble(p: Policy) -> list[Insn]:
    """The device filter for policy `p`."""
    if p.allow_all:
        return _verdict(True)
    prog = _prologue()
    for rule in p.rules:
        prog += _block(rule)
    prog += _verdict(False)
    if len(prog) > MAX_INSNS:
        raise ProgramTooLarge(
            f"{len(p.rules)} device rules make a filter of {len(prog)} instructions, more than "
            f"the kernel's {MAX_INSNS}: list fewer devices (a directory adds every node in it)")
    return prog


def encode(prog: Sequence[Insn]) -> bytes:
    return b"".join(i.encode() for i in prog)


_REG_OPS = {ALU32_MOV_X: "=", ALU32_MOV_K: "=", ALU32_AND_K: "&=", ALU32_RSH_K: ">>="}


def disassemble(prog: Sequence[Insn]) -> list[str]:
    """One line per instruction, in the kernel verifier log's notation (for tests, docs and
    error messages)."""
    out: list[str] = []
    for i in prog:
        if i.code == LDX_W:
            text = f"r{i.dst} = *(u32 *)(r{i.src} + {i.off})"
        elif i.code == ALU32_MOV_X:
            text = f"w{i.dst} = w{i.src}"
        elif i.code in _REG_OPS:
            imm = i.imm & 0xFFFFFFFF
            text = f"w{i.dst} {_REG_OPS[i.code]} {hex(imm) if i.code == ALU32_AND_K else imm}"
        elif i.code == JNE_K:
            text = f"if r{i.dst} != {i.imm} goto +{i.off}"
        elif i.code == JNE_X:
            text = f"if r{i.dst} != r{i.src} goto +{i.off}"
        elif i.code == JSET_K:
            text = f"if r{i.dst} & {hex(i.imm)} goto +{i.off}"
        elif i.code == EXIT:
            text = "exit"
        else:
            text = f"(unknown {i.code:#04x})"
        out.append(text)
    return out
