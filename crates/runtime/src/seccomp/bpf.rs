//! Classic BPF: the few instructions the seccomp compiler emits, and the layout of
//! `struct seccomp_data` it reads.

/// One classic BPF instruction, laid out like the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/bpf_common.h).
pub(super) const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
pub(super) const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
pub(super) const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(super) const JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
pub(super) const JMP_JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K
pub(super) const JMP_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
pub(super) const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// BPF_MAXINSNS: the kernel refuses longer programs.
pub(super) const MAX_INSNS: usize = 4096;

// Offsets in `struct seccomp_data { int nr; __u32 arch; __u64 ip; __u64 args[6]; }`.
pub(super) const OFF_NR: u32 = 0;
pub(super) const OFF_ARCH: u32 = 4;

/// Offset of the low 32 bits of `args[index]` (x86 is little-endian).
pub(super) fn off_arg_lo(index: u8) -> u32 {
    16 + 8 * u32::from(index)
}

/// Offset of the high 32 bits of `args[index]`.
pub(super) fn off_arg_hi(index: u8) -> u32 {
    off_arg_lo(index) + 4
}

pub(super) fn ld(off: u32) -> Insn {
    Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: off,
    }
}

pub(super) fn and(k: u32) -> Insn {
    Insn {
        code: ALU_AND_K,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn ja(k: u32) -> Insn {
    Insn {
        code: JMP_JA,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn jmp(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

pub(super) fn ret(k: u32) -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k,
    }
}
