//! OCI seccomp: compiles `linux.seccomp` into a classic BPF program and installs it.
//!
//! What it owns: the whole path from an OCI [`LinuxSeccomp`] profile to a filter attached to the
//! calling thread — syscall name resolution (static tables generated from the kernel UAPI
//! headers, see `gen_syscalls.py`), the BPF code generator, and the one `seccomp(2)` call
//! (in `install.rs`, the only `unsafe` code here). It does not set `no_new_privs`: the caller
//! does that (or holds `CAP_SYS_ADMIN`) before [`SeccompProgram::install`].
//!
//! Why no libseccomp: no C dependency (one static binary, nothing to find at run time), and a
//! smaller, faster filter. libseccomp's default output tests the syscall number against every
//! rule in turn; here the numbers of an architecture are cut into intervals that share one
//! outcome (a Docker-like allow-list collapses to a few dozen) and searched as a balanced binary
//! tree, so a syscall costs about log2(intervals) compares instead of hundreds.
//!
//! Semantics follow runc + libseccomp:
//! - actions: `SCMP_ACT_KILL` is `KILL_THREAD`; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` without
//!   `errnoRet` use `EPERM`; `SCMP_ACT_NOTIFY` adds `SECCOMP_FILTER_FLAG_NEW_LISTENER` and may
//!   not be the default action nor apply to `write` (the runtime writes after installing).
//! - architectures: the native one (x86_64) always; `SCMP_ARCH_X86` (i386) and `SCMP_ARCH_X32`
//!   (x86_64 with `__X32_SYSCALL_BIT`) when listed; others are accepted and ignored since they
//!   cannot occur on this host. Any other architecture, and x32 numbers when x32 is not listed,
//!   get `KILL_PROCESS` (libseccomp's bad-arch action).
//! - names unknown for an architecture are skipped for it; rules whose action equals the default
//!   action are skipped (runc does both).
//! - several rules for one syscall: the first, in profile order, whose conditions all hold
//!   decides; a rule without conditions always holds. Conditions of one rule are ANDed, except
//!   that, like runc, a rule naming the same argument index twice is split into one rule per
//!   condition (ORed).
//! - arguments are compared as unsigned 64-bit values (high word, then low word); on the 32-bit
//!   ABIs (i386, x32) only the low 32 bits are compared, as libseccomp does.
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`.
//! - like runc's "-ENOSYS patch", unless the default action is `ALLOW`, `LOG` or `TRACE`, a
//!   syscall number above the highest one the profile names (per ABI) returns `ENOSYS`, so that
//!   programs can fall back from syscalls newer than the profile.
//!
//! Unknown action, operator, architecture or flag strings are rejected by the `oci-spec`
//! deserializer, so they never reach [`compile`].

mod bpf;
mod install;
mod syscalls;
#[cfg(test)]
mod tests;

use bpf::Insn;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

/// Why a seccomp profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyDefaultAction,
    #[error(
        "seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall \
         (the runtime must write after installing the filter)"
    )]
    NotifyOnWrite,
    #[error("seccomp: syscall rule #{rule} has an empty syscall name")]
    EmptySyscallName { rule: usize },
    #[error("seccomp: syscall {syscall}: argument index {index} is out of range (0..=5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: {what}: errnoRet {value} does not fit in 16 bits")]
    ErrnoRet { what: String, value: u32 },
    #[error(
        "seccomp: the compiled filter has {len} instructions; the kernel accepts at most {max} \
         (BPF_MAXINSNS)"
    )]
    TooLong { len: usize, max: usize },
    #[error("seccomp: host architecture {0} is not supported (only x86_64)")]
    UnsupportedHost(&'static str),
    #[error("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) failed: {source}")]
    Install {
        flags: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC could not synchronize thread {tid}")]
    Tsync { tid: i64 },
}

/// A compiled filter, ready to install in the process that will exec the container's program.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    insns: Vec<Insn>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2).
    flags: u64,
}

// Return values (linux/seccomp.h).
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

// Filter flags (linux/seccomp.h).
const FLAG_TSYNC: u64 = 1 << 0;
const FLAG_LOG: u64 = 1 << 1;
const FLAG_SPEC_ALLOW: u64 = 1 << 2;
const FLAG_NEW_LISTENER: u64 = 1 << 3;
const FLAG_TSYNC_ESRCH: u64 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u64 = 1 << 5;

// linux/audit.h
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The syscall ABIs this host can run, each with its own number table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X32 => syscalls::X32,
            Abi::I386 => syscalls::I386,
        }
    }

    /// Whether syscall arguments are 64 bits wide (compared on both halves).
    fn wide_args(self) -> bool {
        self == Abi::X86_64
    }

    fn lookup(self, name: &str) -> Option<u32> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .and_then(|i| table.get(i))
            .map(|(_, nr)| *nr)
    }
}

/// Every syscall name the tables know for `arch` (`SCMP_ARCH_X86_64`, `SCMP_ARCH_X86` or
/// `SCMP_ARCH_X32`), in byte order; none for other architectures. For code that builds
/// profiles, e.g. to check an allow-list against what [`compile`] can resolve.
pub fn syscall_names(arch: Arch) -> impl Iterator<Item = &'static str> {
    let table: &'static [(&'static str, u32)] = match arch {
        Arch::ScmpArchX86_64 => syscalls::X86_64,
        Arch::ScmpArchX86 => syscalls::I386,
        Arch::ScmpArchX32 => syscalls::X32,
        _ => &[],
    };
    table.iter().map(|(name, _)| *name)
}

/// Resolves a syscall name for an ABI (x32 numbers include `__X32_SYSCALL_BIT`).
#[cfg(test)]
fn syscall_number(abi: Abi, name: &str) -> Option<u32> {
    abi.lookup(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == datum`
    MaskedEq,
}

/// One argument condition: `args[index] <op> value` (for MaskedEq: `value` = mask, `datum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
    datum: u64,
}

/// A rule after name resolution: when all `conds` hold, return `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

/// What the filter does for one interval of syscall numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    /// First rule whose conditions hold decides; none: `default`.
    Rules {
        rules: Vec<Rule>,
        wide: bool,
        default: u32,
    },
}

impl Leaf {
    fn from_rules(mut rules: Vec<Rule>, wide: bool, default: u32) -> Leaf {
        // Rules after an unconditional one can never decide.
        if let Some(pos) = rules.iter().position(|r| r.conds.is_empty()) {
            rules.truncate(pos + 1);
        }
        match rules.as_slice() {
            [only] if only.conds.is_empty() => Leaf::Ret(only.action),
            [] => Leaf::Ret(default),
            _ => Leaf::Rules {
                rules,
                wide,
                default,
            },
        }
    }
}

fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: impl FnOnce() -> String,
) -> Result<u32, SeccompError> {
    let data = |base: u32| -> Result<u32, SeccompError> {
        let value = errno_ret.unwrap_or(EPERM);
        if value > 0xffff {
            return Err(SeccompError::ErrnoRet {
                what: what(),
                value,
            });
        }
        Ok(base | value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => data(RET_ERRNO)?,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActTrace => data(RET_TRACE)?,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    })
}

fn convert_op(op: LinuxSeccompOperator) -> Op {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// The condition lists of one OCI syscall entry (more than one when runc would split it).
fn rule_conditions(call: &LinuxSyscall) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let args = call.args().as_deref().unwrap_or_default();
    let mut conds = Vec::with_capacity(args.len());
    let mut seen = [0usize; 6];
    for arg in args {
        let index = arg.index();
        let slot = seen.get_mut(index).ok_or_else(|| SeccompError::ArgIndex {
            syscall: call.names().join(","),
            index,
        })?;
        *slot += 1;
        conds.push(Cond {
            // index <= 5 was checked just above.
            index: index as u8,
            op: convert_op(arg.op()),
            value: arg.value(),
            datum: arg.value_two().unwrap_or(0),
        });
    }
    if seen.iter().any(|&n| n > 1) {
        // runc: "if two or more arguments have the same index, add each as a separate rule".
        Ok(conds.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conds])
    }
}

/// Per-ABI result of resolving the profile's rules.
#[derive(Default)]
struct AbiRules {
    by_nr: BTreeMap<u32, Vec<Rule>>,
    /// Highest number the profile names for this ABI (also counting skipped rules).
    max_nr: Option<u32>,
}

/// Compiles an OCI seccomp profile for the host's architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::UnsupportedHost(std::env::consts::ARCH));
    }

    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefaultAction);
    }
    let default = action_value(
        profile.default_action(),
        profile.default_errno_ret(),
        || "defaultErrnoRet".to_string(),
    )?;

    let mut use_x32 = false;
    let mut use_i386 = false;
    for arch in profile.architectures().as_deref().unwrap_or_default() {
        match arch {
            Arch::ScmpArchX86 => use_i386 = true,
            Arch::ScmpArchX32 => use_x32 = true,
            // Native (always present), or cannot occur on an x86_64 host.
            _ => {}
        }
    }
    let mut abis = vec![Abi::X86_64];
    if use_x32 {
        abis.push(Abi::X32);
    }
    if use_i386 {
        abis.push(Abi::I386);
    }

    let mut flags = 0u64;
    for flag in profile.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }

    let mut per_abi: Vec<AbiRules> = abis.iter().map(|_| AbiRules::default()).collect();
    for (i, call) in profile
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let action = action_value(call.action(), call.errno_ret(), || {
            format!("syscall {}", call.names().join(","))
        })?;
        if action == RET_USER_NOTIF {
            if call.names().iter().any(|n| n == "write") {
                return Err(SeccompError::NotifyOnWrite);
            }
            flags |= FLAG_NEW_LISTENER;
        }
        let alternatives = rule_conditions(call)?;
        if call.names().iter().any(|n| n.is_empty()) {
            return Err(SeccompError::EmptySyscallName { rule: i });
        }
        let redundant = action == default;
        for name in call.names() {
            for (abi, rules) in abis.iter().zip(per_abi.iter_mut()) {
                let Some(nr) = abi.lookup(name) else {
                    continue;
                };
                rules.max_nr = rules.max_nr.max(Some(nr));
                if redundant {
                    // runc skips these (libseccomp would refuse them).
                    continue;
                }
                let entry = rules.by_nr.entry(nr).or_default();
                entry.extend(alternatives.iter().map(|conds| Rule {
                    conds: conds.clone(),
                    action,
                }));
            }
        }
    }

    // runc's -ENOSYS patch; not for permissive defaults, nor when the default already is ENOSYS.
    let enosys = RET_ERRNO | ENOSYS;
    let enosys_stub = !matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    ) && default != enosys;

    // Interval lists, one per audit arch.
    let mut x86_64_intervals = Vec::new();
    let mut i386_intervals = None;
    for (abi, rules) in abis.iter().zip(per_abi) {
        let above = if enosys_stub { rules.max_nr } else { None };
        let leaves: BTreeMap<u32, Leaf> = rules
            .by_nr
            .into_iter()
            .map(|(nr, r)| (nr, Leaf::from_rules(r, abi.wide_args(), default)))
            .collect();
        match abi {
            Abi::X86_64 => {
                push_range(
                    &mut x86_64_intervals,
                    0,
                    X32_SYSCALL_BIT - 1,
                    &leaves,
                    default,
                    above,
                    enosys,
                );
            }
            Abi::X32 => {
                push_range(
                    &mut x86_64_intervals,
                    X32_SYSCALL_BIT,
                    u32::MAX,
                    &leaves,
                    default,
                    above,
                    enosys,
                );
            }
            Abi::I386 => {
                let mut iv = Vec::new();
                push_range(&mut iv, 0, u32::MAX, &leaves, default, above, enosys);
                i386_intervals = Some(iv);
            }
        }
    }
    if !use_x32 {
        // x32 numbers on the x86_64 audit arch: bad architecture.
        push_interval(
            &mut x86_64_intervals,
            X32_SYSCALL_BIT,
            Leaf::Ret(RET_KILL_PROCESS),
        );
    }

    let insns = assemble(&x86_64_intervals, i386_intervals.as_deref());
    if insns.len() > bpf::MAX_INSNS {
        return Err(SeccompError::TooLong {
            len: insns.len(),
            max: bpf::MAX_INSNS,
        });
    }
    if flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC != 0 {
        // TSYNC and NEW_LISTENER both use the return value; the kernel requires TSYNC_ESRCH.
        flags |= FLAG_TSYNC_ESRCH;
    }
    Ok(SeccompProgram { insns, flags })
}

/// Appends `[start, ..)` with `leaf`, merging it into the previous interval when they agree.
fn push_interval(out: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    if out.last().is_some_and(|(_, last)| *last == leaf) {
        return;
    }
    out.push((start, leaf));
}

/// Appends the intervals covering `[lo, hi]`: the given leaves, `default` in the gaps, and
/// `enosys` above `enosys_above` when set.
fn push_range(
    out: &mut Vec<(u32, Leaf)>,
    lo: u32,
    hi: u32,
    leaves: &BTreeMap<u32, Leaf>,
    default: u32,
    enosys_above: Option<u32>,
    enosys: u32,
) {
    let mut next = Some(lo); // first number not yet covered
    for (&nr, leaf) in leaves.range(lo..=hi) {
        if let Some(n) = next {
            if n < nr {
                push_interval(out, n, Leaf::Ret(default));
            }
        }
        push_interval(out, nr, leaf.clone());
        next = nr.checked_add(1);
    }
    let Some(n) = next.filter(|&n| n <= hi) else {
        return;
    };
    match enosys_above.and_then(|m| m.checked_add(1)) {
        Some(first_enosys) if first_enosys <= hi => {
            if n < first_enosys {
                push_interval(out, n, Leaf::Ret(default));
            }
            push_interval(out, first_enosys.max(n), Leaf::Ret(enosys));
        }
        _ => push_interval(out, n, Leaf::Ret(default)),
    }
}

/// Lays out the whole program:
///
/// ```text
///       ld  [arch]
///       jeq #AUDIT_ARCH_X86_64, native, 0
///       jeq #AUDIT_ARCH_I386, 0, 1          (when i386 is listed)
///       ja  i386
///       ret #KILL_PROCESS                   (bad arch)
/// native: ld [nr]; <search tree>
/// i386:   ld [nr]; <search tree>
/// ```
fn assemble(x86_64: &[(u32, Leaf)], i386: Option<&[(u32, Leaf)]>) -> Vec<Insn> {
    let native = emit_tree(x86_64);
    let other = i386.map(emit_tree);
    let dispatch_len: u8 = if other.is_some() { 3 } else { 1 };
    let mut out = Vec::with_capacity(
        4 + dispatch_len as usize + native.len() + other.as_ref().map_or(0, |o| o.len() + 1),
    );
    out.push(bpf::ld(bpf::OFF_ARCH));
    out.push(bpf::jmp(bpf::JMP_JEQ_K, AUDIT_ARCH_X86_64, dispatch_len, 0));
    if other.is_some() {
        out.push(bpf::jmp(bpf::JMP_JEQ_K, AUDIT_ARCH_I386, 0, 1));
        // Skip the bad-arch ret and the native section (its `ld` plus its tree).
        out.push(bpf::ja(1 + 1 + native.len() as u32));
    }
    out.push(bpf::ret(RET_KILL_PROCESS));
    out.push(bpf::ld(bpf::OFF_NR));
    out.extend(native);
    if let Some(other) = other {
        out.push(bpf::ld(bpf::OFF_NR));
        out.extend(other);
    }
    out
}

/// A balanced binary search over the interval starts (`jge`), with the leaf code at the bottom.
/// Every path ends in a `ret`, so subtrees are self-contained and can be concatenated.
fn emit_tree(intervals: &[(u32, Leaf)]) -> Vec<Insn> {
    match intervals {
        [] => vec![bpf::ret(RET_KILL_PROCESS)], // not reached: intervals cover 0..=u32::MAX
        [(_, leaf)] => emit_leaf(leaf),
        _ => {
            let mid = intervals.len() / 2;
            let (left_iv, right_iv) = intervals.split_at(mid);
            let split = right_iv.first().map_or(0, |(start, _)| *start);
            let left = emit_tree(left_iv);
            let right = emit_tree(right_iv);
            let mut out = Vec::with_capacity(left.len() + right.len() + 2);
            match u8::try_from(left.len()) {
                Ok(skip) => out.push(bpf::jmp(bpf::JMP_JGE_K, split, skip, 0)),
                Err(_) => {
                    // Too far for a conditional jump: go through a long `ja`.
                    out.push(bpf::jmp(bpf::JMP_JGE_K, split, 0, 1));
                    out.push(bpf::ja(left.len() as u32));
                }
            }
            out.extend(left);
            out.extend(right);
            out
        }
    }
}

fn emit_leaf(leaf: &Leaf) -> Vec<Insn> {
    match leaf {
        Leaf::Ret(action) => vec![bpf::ret(*action)],
        Leaf::Rules {
            rules,
            wide,
            default,
        } => {
            let mut out = Vec::new();
            for rule in rules {
                emit_rule(&mut out, rule, *wide);
            }
            // Only reached when every rule is conditional and none held.
            out.push(bpf::ret(*default));
            out
        }
    }
}

/// Where a conditional jump goes: the next instruction, `skip` further, or the rule's failure
/// exit (the first instruction after the rule's `ret`).
#[derive(Clone, Copy)]
enum Tgt {
    Next,
    Skip(u8),
    Fail,
}

/// Emits `conds...; ret action`, where any failed condition jumps past the `ret`.
fn emit_rule(out: &mut Vec<Insn>, rule: &Rule, wide: bool) {
    let mut code: Vec<(Insn, Tgt, Tgt)> = Vec::new();
    let plain = |i: Insn| (i, Tgt::Next, Tgt::Next);
    let j = |code: u16, k: u32, t: Tgt, f: Tgt| (bpf::jmp(code, k, 0, 0), t, f);
    for c in &rule.conds {
        let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
        let (dhi, dlo) = ((c.datum >> 32) as u32, c.datum as u32);
        let lo = bpf::off_arg_lo(c.index);
        let hi = bpf::off_arg_hi(c.index);
        use bpf::{JMP_JEQ_K as JEQ, JMP_JGE_K as JGE, JMP_JGT_K as JGT};
        use Tgt::{Fail, Next, Skip};
        // High word (64-bit ABIs only). After it, either the condition is decided
        // (Fail, or a Skip over the low-word part) or the high words are equal.
        if wide {
            match c.op {
                Op::Eq => {
                    code.push(plain(bpf::ld(hi)));
                    code.push(j(JEQ, vhi, Next, Fail));
                }
                Op::Ne => {
                    code.push(plain(bpf::ld(hi)));
                    code.push(j(JEQ, vhi, Next, Skip(2)));
                }
                Op::Gt | Op::Ge => {
                    code.push(plain(bpf::ld(hi)));
                    code.push(j(JGT, vhi, Skip(3), Next));
                    code.push(j(JEQ, vhi, Next, Fail));
                }
                Op::Lt | Op::Le => {
                    code.push(plain(bpf::ld(hi)));
                    code.push(j(JGE, vhi, Next, Skip(3)));
                    code.push(j(JEQ, vhi, Next, Fail));
                }
                Op::MaskedEq => {
                    if vhi != 0 || dhi != 0 {
                        code.push(plain(bpf::ld(hi)));
                        if vhi != u32::MAX {
                            code.push(plain(bpf::and(vhi)));
                        }
                        code.push(j(JEQ, dhi, Next, Fail));
                    }
                }
            }
        }
        // Low word (exactly two instructions unless MaskedEq, which Skip(n) above relies on).
        code.push(plain(bpf::ld(lo)));
        match c.op {
            Op::Eq => code.push(j(JEQ, vlo, Next, Fail)),
            Op::Ne => code.push(j(JEQ, vlo, Fail, Next)),
            Op::Gt => code.push(j(JGT, vlo, Next, Fail)),
            Op::Ge => code.push(j(JGE, vlo, Next, Fail)),
            Op::Lt => code.push(j(JGE, vlo, Fail, Next)),
            Op::Le => code.push(j(JGT, vlo, Fail, Next)),
            Op::MaskedEq => {
                if vlo != u32::MAX {
                    code.push(plain(bpf::and(vlo)));
                }
                code.push(j(JEQ, dlo, Next, Fail));
            }
        }
    }
    code.push(plain(bpf::ret(rule.action)));

    // Resolve targets. A rule is at most 6 conditions of at most 7 instructions plus the ret,
    // so every offset fits in a u8.
    let len = code.len();
    for (pos, (mut insn, t, f)) in code.into_iter().enumerate() {
        let resolve = |tgt: Tgt| -> u8 {
            match tgt {
                Tgt::Next => 0,
                Tgt::Skip(n) => n,
                Tgt::Fail => u8::try_from(len - pos - 1).unwrap_or(u8::MAX),
            }
        };
        if insn.code != bpf::RET_K && insn.code != bpf::LD_W_ABS && insn.code != bpf::ALU_AND_K {
            insn.jt = resolve(t);
            insn.jf = resolve(f);
        }
        out.push(insn);
    }
}

impl SeccompProgram {
    /// Installs the filter on the calling thread (with the profile's flags). Returns the
    /// user-notification listener fd when the profile uses SCMP_ACT_NOTIFY.
    ///
    /// The caller must have set `no_new_privs` (or hold `CAP_SYS_ADMIN`). Does not allocate,
    /// so it is safe to call in a forked child.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        install::set_mode_filter(&self.insns, self.flags, self.flags & FLAG_NEW_LISTENER != 0)
    }
}
