"""A tiny classic-BPF machine for seccomp programs, to test the compiler without a kernel.

`check(prog)` rejects what the kernel's seccomp checker (seccomp_check_filter/bpf_check_classic)
would: an empty or too long program, a jump past the end, a load outside struct seccomp_data
or not 4-byte aligned, an opcode seccomp does not take, no RET at the end. `run(prog, nr, arch,
args)` executes it on one struct seccomp_data and returns the SECCOMP_RET_* value, and counts
the instructions it executed (the filter's cost per syscall).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from runtime.process import seccomp as sc

SECCOMP_DATA_SIZE = 64  # int nr; u32 arch; u64 ip; u64 args[6]
JUMPS = (sc.BPF_JMP_JEQ_K, sc.BPF_JMP_JGT_K, sc.BPF_JMP_JGE_K, sc.BPF_JMP_JSET_K)
OPCODES = (sc.BPF_LD_W_ABS, sc.BPF_ALU_AND_K, sc.BPF_JMP_JA, sc.BPF_RET_K, *JUMPS)


@dataclass
class Result:
    action: int
    steps: int


def check(prog: list[sc.Insn]) -> None:
    assert 0 < len(prog) <= sc.BPF_MAXINSNS, f"{len(prog)} instructions"
    for pc, ins in enumerate(prog):
        assert ins.code in OPCODES, f"opcode {ins.code:#x} at {pc}"
        assert 0 <= ins.jt <= 255 and 0 <= ins.jf <= 255 and 0 <= ins.k < 1 << 32, (pc, ins)
        if ins.code == sc.BPF_LD_W_ABS:
            assert ins.k % 4 == 0 and ins.k + 4 <= SECCOMP_DATA_SIZE, f"load {ins.k} at {pc}"
        elif ins.code == sc.BPF_JMP_JA:
            assert pc + 1 + ins.k < len(prog), f"ja past the end at {pc}"
        elif ins.code in JUMPS:
            assert pc + 1 + max(ins.jt, ins.jf) < len(prog), f"jump past the end at {pc}"
    assert prog[-1].code == sc.BPF_RET_K, "the program must end in RET"


def run(prog: list[sc.Insn], nr: int, arch: int, args: tuple[int, ...] = ()) -> Result:
    full = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("=IIQ6Q", nr & 0xFFFFFFFF, arch, 0x1000, *full)
    acc, pc, steps = 0, 0, 0
    while True:
        assert 0 <= pc < len(prog), f"ran off the program at {pc}"
        ins = prog[pc]
        steps += 1
        if ins.code == sc.BPF_RET_K:
            return Result(ins.k, steps)
        if ins.code == sc.BPF_LD_W_ABS:
            (acc,) = struct.unpack_from("=I", data, ins.k)
            pc += 1
        elif ins.code == sc.BPF_ALU_AND_K:
            acc &= ins.k
            pc += 1
        elif ins.code == sc.BPF_JMP_JA:
            pc += 1 + ins.k
        else:
            cond = {sc.BPF_JMP_JEQ_K: acc == ins.k, sc.BPF_JMP_JGT_K: acc > ins.k,
                    sc.BPF_JMP_JGE_K: acc >= ins.k,
                    sc.BPF_JMP_JSET_K: bool(acc & ins.k)}[ins.code]
            pc += 1 + (ins.jt if cond else ins.jf)
