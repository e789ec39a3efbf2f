"""The device filter's assembler: rule grammar, instruction encoding, the program's shape,
and its verdicts (run on a small interpreter of the encoded bytes, tests/unit/cgroups/bpfvm)."""
from __future__ import annotations

import itertools

import pytest

from runtime.cgroups import devprog as p
from runtime.devrules import DEFAULT_RULES, DeviceRule, RuleError, policy, rules
from tests.unit.cgroups import bpfvm

B, C = p.DEV_BLOCK, p.DEV_CHAR
M, R, W = p.ACC_MKNOD, p.ACC_READ, p.ACC_WRITE


def verdict(allowed: tuple[DeviceRule, ...], dev_type: int, major: int, minor: int, access: int) -> int:
    return bpfvm.run(p.encode(p.assemble(policy(allowed))), dev_type, major, minor, access)


# -- the rule grammar ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "rule"), [
    ("c 1:3 rwm", DeviceRule("c", 1, 3, "rwm")),
    ("b 8:* r", DeviceRule("b", 8, None, "r")),
    ("c *:* m", DeviceRule("c", None, None, "m")),
    ("c 1:3 mr", DeviceRule("c", 1, 3, "rm")),  # access kept in r, w, m order
    ("a *:* rwm", DeviceRule("a", None, None, "rwm")),
    ("c 4294967295:0 w", DeviceRule("c", 2**32 - 1, 0, "w")),
])
def test_rules_parse_and_print_in_the_v1_syntax(text: str, rule: DeviceRule) -> None:
    assert DeviceRule.parse(text) == rule
    assert DeviceRule.parse(str(rule)) == rule


@pytest.mark.parametrize("text", [
    "", "c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c  1:3 rwm", "c 1:3 rwmr", "C 1:3 rwm",
    "c -1:3 r", "c 1:3 ", "c 4294967296:0 r",
])
def test_bad_rules_say_how_to_write_one(text: str) -> None:
    with pytest.raises(RuleError, match=r'invalid device cgroup rule ".*": '):
        DeviceRule.parse(text)


def test_rules_for_one_node_merge_their_access_as_v1_does() -> None:
    merged = policy(rules(["c 1:3 r", "b 8:0 m", "c 1:3 w"]))
    assert merged.rules == (DeviceRule("c", 1, 3, "rw"), DeviceRule("b", 8, 0, "m"))
    assert not merged.allow_all
    assert policy(rules(["c 1:3 r", "a 5:5 r"])).allow_all  # "a" means all, whatever follows


# -- encoding -------------------------------------------------------------------------------

def test_instructions_encode_as_struct_bpf_insn() -> None:
    # code, dst (low nibble) | src (high nibble), off (s16 LE), imm (s32 LE)
    assert p.Insn(p.LDX_W, 2, 1, 4).encode() == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert p.Insn(p.JNE_K, 5, off=2, imm=200).encode() == bytes([0x55, 0x05, 2, 0, 200, 0, 0, 0])
    assert p.Insn(p.ALU32_MOV_K, 0, imm=-1).encode() == bytes([0xB4, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    assert p.Insn(p.JNE_X, 4, 1, 3).encode() == bytes([0x5D, 0x14, 3, 0, 0, 0, 0, 0])
    assert p.Insn(p.EXIT).encode() == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    assert len(p.encode(p.assemble(policy(DEFAULT_RULES)))) == 65 * p.INSN_SIZE


def test_the_default_program_reads_the_context_once_then_one_block_per_rule() -> None:
    text = p.disassemble(p.assemble(policy(DEFAULT_RULES)))
    assert text[:6] == [
        "r2 = *(u32 *)(r1 + 0)", "w3 = w2", "w3 >>= 16", "w2 &= 0xffff",
        "r4 = *(u32 *)(r1 + 4)", "r5 = *(u32 *)(r1 + 8)",
    ]
    assert text[6:14] == [  # "c *:* m", "b *:* m": type and access only
        "if r2 != 2 goto +3", "if r3 & 0x6 goto +2", "w0 = 1", "exit",
        "if r2 != 1 goto +3", "if r3 & 0x6 goto +2", "w0 = 1", "exit",
    ]
    assert text[14:19] == [  # "c 1:3 rwm": no access test for rwm
        "if r2 != 2 goto +4", "if r4 != 1 goto +3", "if r5 != 3 goto +2", "w0 = 1", "exit",
    ]
    pts = text.index("if r4 != 136 goto +2")  # "c 136:* rwm": no minor test
    assert text[pts - 1:pts + 3] == ["if r2 != 2 goto +3", "if r4 != 136 goto +2", "w0 = 1", "exit"]
    assert text[-2:] == ["w0 = 0", "exit"]  # nothing matched: deny
    assert len(text) == 65


def test_every_jump_lands_on_the_next_block() -> None:
    prog = p.assemble(policy(rules(["c 1:3 r", "b *:5 w", "c 4000000000:* rwm", "b 7:* m"])))
    starts = {6}
    for n, insn in enumerate(prog):
        if insn.code == p.EXIT:
            starts.add(n + 1)
    for n, insn in enumerate(prog):
        if insn.code in (p.JNE_K, p.JNE_X, p.JSET_K):
            assert insn.off > 0 and n + 1 + insn.off in starts, (n, p.disassemble(prog)[n])
    assert prog[-1].code == p.EXIT


def test_allow_all_is_a_two_instruction_program() -> None:
    assert p.disassemble(p.assemble(policy(rules(["a *:* rwm"])))) == ["w0 = 1", "exit"]


def test_a_program_past_the_kernel_limit_is_refused_with_a_hint() -> None:
    many = tuple(DeviceRule("c", 200, n, "rw") for n in range(700))
    with pytest.raises(p.ProgramTooLarge, match="list fewer devices"):
        p.assemble(policy(many))


# -- verdicts -------------------------------------------------------------------------------

@pytest.mark.parametrize(("dev", "numbers", "access", "allowed"), [
    (C, (1, 3), R | W, 1),  # /dev/null
    (C, (1, 9), R, 1),  # /dev/urandom
    (C, (5, 2), R | W, 1),  # /dev/ptmx
    (C, (136, 7), R | W, 1),  # /dev/pts/7
    (C, (136, 4095), W, 1),
    (C, (10, 200), R | W, 1),  # /dev/net/tun
    (B, (8, 0), M, 1),  # mknod of a disk is allowed (images may carry device files) ...
    (B, (8, 0), R, 0),  # ... opening it is not
    (B, (254, 0), R | W, 0),
    (C, (1, 4), R, 0),  # /dev/port
    (C, (1, 1), R, 0),  # /dev/mem
    (C, (10, 237), R, 0),  # loop-control
    (B, (1, 3), R, 0),  # numbers of null, but a block device
    (B, (136, 1), R, 0),
    (C, (4, 0), M | R, 0),  # a request must fit in one rule: mknod alone ok, not with read
    (C, (4, 0), M, 1),
])
def test_the_default_allow_list(dev: int, numbers: tuple[int, int], access: int, allowed: int) -> None:
    assert verdict(DEFAULT_RULES, dev, *numbers, access) == allowed


def test_access_must_be_a_subset_of_one_rule() -> None:
    only_read = rules(["b 7:0 r"])
    assert verdict(only_read, B, 7, 0, R) == 1
    assert verdict(only_read, B, 7, 0, W) == 0
    assert verdict(only_read, B, 7, 0, R | W) == 0
    assert verdict(only_read, B, 7, 0, M) == 0
    merged = rules(["b 7:0 r", "b 7:0 w"])  # merged into one "rw" rule, as v1
    assert verdict(merged, B, 7, 0, R | W) == 1
    split = rules(["b 7:* r", "b 7:0 w"])  # two nodes: neither covers rw alone
    assert verdict(split, B, 7, 0, R | W) == 0
    assert verdict(split, B, 7, 0, W) == 1


def test_wildcards_and_types() -> None:
    r = rules(["c *:5 rw", "b 9:* rwm"])
    assert verdict(r, C, 123, 5, R) == 1
    assert verdict(r, C, 123, 6, R) == 0
    assert verdict(r, B, 123, 5, R) == 0
    assert verdict(r, B, 9, 77, R | W | M) == 1
    assert verdict(r, C, 9, 77, R) == 0


def test_numbers_above_2_31_compare_exactly() -> None:
    # a 64-bit compare with a sign-extended immediate would never match these
    big = rules(["c 4294967280:2147483648 r"])
    assert "if r4 != r1 goto +" in "\n".join(p.disassemble(p.assemble(policy(big))))
    assert verdict(big, C, 2**32 - 16, 2**31, R) == 1
    assert verdict(big, C, 2**32 - 15, 2**31, R) == 0
    assert verdict(big, C, 2**32 - 16, 2**31 - 1, R) == 0


def test_order_of_allow_rules_does_not_change_a_verdict() -> None:
    given = rules(["c 1:3 r", "c 1:* w", "b *:* m", "c 136:* rw", "b 8:0 rwm"])
    probes = [(t, ma, mi, acc) for t in (B, C) for ma, mi in ((1, 3), (1, 4), (8, 0), (136, 2))
              for acc in (R, W, M, R | W, R | W | M)]
    expected = [verdict(given, *probe) for probe in probes]
    for order in itertools.permutations(given):
        assert [verdict(order, *probe) for probe in probes] == expected


def test_allow_all_allows_everything() -> None:
    assert verdict(rules(["c 1:3 r", "a *:* rwm"]), B, 8, 0, R | W | M) == 1
