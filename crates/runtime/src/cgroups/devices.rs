//! Device rules: validated once, then written as v1 `devices.allow`/`devices.deny` lines or
//! compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE` program for v2.
//!
//! Program semantics (same as runc's devicefilter): rules are checked last to first and the
//! last matching rule decides; when none matches the default applies, which is deny when the
//! list starts with a deny-all rule and allow otherwise (a fresh v1 cgroup allows everything).
//! An allow rule matches when the requested access is a subset of its access; a deny rule
//! matches when the requested access shares a bit with its access. Unlike the v1 kernel, two
//! allow rules for the same device are not merged (`r` then `w` does not allow `rw` at once).

use super::CgroupError;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// BPF_DEVCG_ACC_* bits.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
/// BPF_DEVCG_DEV_* values.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One validated device rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c'.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// BPF_DEVCG_ACC_* bits.
    pub access: u32,
}

impl Rule {
    /// The v1 line, e.g. "c 1:3 rwm".
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        if self.access & ACC_READ != 0 {
            acc.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            acc.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            acc.push('m');
        }
        format!(
            "{} {}:{} {}",
            self.typ,
            num(self.major),
            num(self.minor),
            acc
        )
    }

    fn is_wildcard_all(&self) -> bool {
        self.typ == 'a'
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_MKNOD | ACC_READ | ACC_WRITE
    }
}

/// Validates OCI device rules.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |what: &str, value: String, reason: &str| CgroupError::Invalid {
                field: format!("devices[{i}].{what}"),
                value,
                reason: reason.into(),
            };
            let typ = match r.typ() {
                None | Some(LinuxDeviceType::A) => 'a',
                Some(LinuxDeviceType::B) => 'b',
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
                Some(LinuxDeviceType::P) => {
                    return Err(bad(
                        "type",
                        "p".into(),
                        "FIFOs are not controlled by the device cgroup",
                    ))
                }
            };
            let num = |what: &str, v: Option<i64>| match v {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= i32::MAX as u32)
                    .map(Some)
                    .ok_or_else(|| bad(what, n.to_string(), "must be -1 (any) or 0..2^31")),
            };
            let major = num("major", r.major())?;
            let minor = num("minor", r.minor())?;
            let acc_str = r.access().as_deref().unwrap_or("");
            let mut access = 0;
            for ch in acc_str.chars() {
                access |= match ch {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    'm' => ACC_MKNOD,
                    _ => return Err(bad("access", acc_str.into(), "only r, w and m are allowed")),
                };
            }
            if access == 0 {
                access = ACC_MKNOD | ACC_READ | ACC_WRITE;
            }
            Ok(Rule {
                allow: r.allow(),
                typ,
                major,
                minor,
                access,
            })
        })
        .collect()
}

/// Whether an access with no matching rule is allowed.
pub(crate) fn default_allow(rules: &[Rule]) -> bool {
    !matches!(rules.first(), Some(r) if !r.allow && r.is_wildcard_all())
}

// eBPF instruction encoding (include/uapi/linux/bpf.h, bpf_common.h).
const BPF_LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_ALU64_AND_K: u8 = 0x57;
const BPF_ALU64_RSH_K: u8 = 0x77;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_ALU64_MOV_X: u8 = 0xbf;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_EXIT: u8 = 0x95;

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// Compiles the rules into a cgroup device program. Registers after the prologue:
/// R2 = device type, R3 = requested access, R4 = major, R5 = minor.
pub(crate) fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut prog = vec![
        // R2 = ctx->access_type & 0xffff (the type)
        insn(BPF_LDX_MEM_W, 2, 1, 0, 0),
        insn(BPF_ALU64_AND_K, 2, 0, 0, 0xffff),
        // R3 = ctx->access_type >> 16 (the access)
        insn(BPF_LDX_MEM_W, 3, 1, 0, 0),
        insn(BPF_ALU64_RSH_K, 3, 0, 0, 16),
        // R4 = ctx->major, R5 = ctx->minor
        insn(BPF_LDX_MEM_W, 4, 1, 4, 0),
        insn(BPF_LDX_MEM_W, 5, 1, 8, 0),
    ];
    let all = (ACC_MKNOD | ACC_READ | ACC_WRITE) as i32;
    for rule in rules.iter().rev() {
        // Each check is a jump to the end of this block when it does not match; the offsets
        // are patched once the block's length is known (marked with i16::MIN).
        let mut block: Vec<Insn> = Vec::new();
        match rule.typ {
            'b' => block.push(insn(BPF_JMP_JNE_K, 2, 0, i16::MIN, DEV_BLOCK)),
            'c' => block.push(insn(BPF_JMP_JNE_K, 2, 0, i16::MIN, DEV_CHAR)),
            _ => {}
        }
        if rule.allow {
            if rule.access as i32 != all {
                // requested & ~allowed must be 0
                block.push(insn(BPF_ALU64_MOV_X, 1, 3, 0, 0));
                block.push(insn(BPF_ALU64_AND_K, 1, 0, 0, !(rule.access as i32) & all));
                block.push(insn(BPF_JMP_JNE_K, 1, 0, i16::MIN, 0));
            }
        } else {
            // requested & denied must not be 0
            block.push(insn(BPF_ALU64_MOV_X, 1, 3, 0, 0));
            block.push(insn(BPF_ALU64_AND_K, 1, 0, 0, rule.access as i32));
            block.push(insn(BPF_JMP_JEQ_K, 1, 0, i16::MIN, 0));
        }
        if let Some(major) = rule.major {
            block.push(insn(BPF_JMP_JNE_K, 4, 0, i16::MIN, major as i32));
        }
        if let Some(minor) = rule.minor {
            block.push(insn(BPF_JMP_JNE_K, 5, 0, i16::MIN, minor as i32));
        }
        block.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(BPF_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == i16::MIN {
                // Jump to the first instruction after the block; blocks are a few instructions.
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(insn(
        BPF_ALU64_MOV_K,
        0,
        0,
        0,
        i32::from(default_allow(rules)),
    ));
    prog.push(insn(BPF_EXIT, 0, 0, 0, 0));
    prog
}

/// Runs a compiled program on one access (a tiny interpreter for the instructions `compile`
/// emits), so the semantics can be unit-tested without a kernel.
#[cfg(test)]
pub(crate) fn simulate(prog: &[Insn], typ: i32, access: u32, major: u32, minor: u32) -> bool {
    let mut r = [0u64; 11];
    let ctx = [
        ((access as u64) << 16) | typ as u64,
        major as u64,
        minor as u64,
    ];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
        let imm = i.imm as i64 as u64;
        pc += 1;
        match i.code {
            BPF_LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize],
            BPF_ALU64_AND_K => r[dst] &= imm,
            BPF_ALU64_RSH_K => r[dst] >>= imm,
            BPF_ALU64_MOV_K => r[dst] = imm,
            BPF_ALU64_MOV_X => r[dst] = r[src],
            BPF_JMP_JEQ_K if r[dst] == imm => pc += i.off as usize,
            BPF_JMP_JNE_K if r[dst] != imm => pc += i.off as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JNE_K => {}
            BPF_EXIT => return r[0] != 0,
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
pub(crate) const TEST_DEV_CHAR: i32 = DEV_CHAR;
#[cfg(test)]
pub(crate) const TEST_DEV_BLOCK: i32 = DEV_BLOCK;
#[cfg(test)]
pub(crate) const TEST_ACC_RW: u32 = ACC_READ | ACC_WRITE;
#[cfg(test)]
pub(crate) const TEST_ACC_R: u32 = ACC_READ;
#[cfg(test)]
pub(crate) const TEST_ACC_W: u32 = ACC_WRITE;
