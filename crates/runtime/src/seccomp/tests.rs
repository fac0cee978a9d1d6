//! Unit tests: compiled programs are run in a small classic-BPF interpreter that also checks
//! what the kernel's verifier checks (known opcodes, jumps in range, ends in `ret`, aligned
//! loads inside `seccomp_data`).

use super::*;
use serde_json::{json, Value};

const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile must parse")
}

fn compile_json(v: Value) -> SeccompProgram {
    compile(&profile(v)).expect("test profile must compile")
}

/// Checks the program the way the kernel does before accepting it.
fn verify(prog: &[Insn]) {
    assert!(
        !prog.is_empty() && prog.len() <= bpf::MAX_INSNS,
        "length {}",
        prog.len()
    );
    for (pc, insn) in prog.iter().enumerate() {
        match insn.code {
            bpf::LD_W_ABS => {
                assert!(
                    insn.k % 4 == 0 && insn.k < 64,
                    "pc {pc}: bad load offset {}",
                    insn.k
                );
            }
            bpf::ALU_AND_K | bpf::RET_K => {}
            bpf::JMP_JA => {
                assert!(
                    pc + 1 + (insn.k as usize) < prog.len(),
                    "pc {pc}: ja out of range"
                );
            }
            bpf::JMP_JEQ_K | bpf::JMP_JGT_K | bpf::JMP_JGE_K => {
                assert!(
                    pc + 1 + (insn.jt as usize) < prog.len(),
                    "pc {pc}: jt out of range"
                );
                assert!(
                    pc + 1 + (insn.jf as usize) < prog.len(),
                    "pc {pc}: jf out of range"
                );
            }
            code => panic!("pc {pc}: unexpected opcode {code:#x}"),
        }
    }
    assert_eq!(
        prog.last().map(|i| i.code),
        Some(bpf::RET_K),
        "must end in ret"
    );
}

/// Runs the program on `seccomp_data { nr, arch, ip: 0, args }`; returns (action, steps).
fn run_steps(p: &SeccompProgram, arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    verify(&p.insns);
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let insn = p.insns[pc];
        steps += 1;
        let cond = |taken: bool| if taken { insn.jt } else { insn.jf } as usize;
        pc = match insn.code {
            bpf::LD_W_ABS => {
                let k = insn.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                pc + 1
            }
            bpf::ALU_AND_K => {
                acc &= insn.k;
                pc + 1
            }
            bpf::JMP_JA => pc + 1 + insn.k as usize,
            bpf::JMP_JEQ_K => pc + 1 + cond(acc == insn.k),
            bpf::JMP_JGT_K => pc + 1 + cond(acc > insn.k),
            bpf::JMP_JGE_K => pc + 1 + cond(acc >= insn.k),
            bpf::RET_K => return (insn.k, steps),
            code => panic!("unexpected opcode {code:#x}"),
        };
    }
}

fn run(p: &SeccompProgram, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_steps(p, arch, nr, args).0
}

fn nr64(name: &str) -> u32 {
    syscall_number(Abi::X86_64, name).unwrap()
}

fn x86(p: &SeccompProgram, name: &str) -> u32 {
    run(p, AUDIT_ARCH_X86_64, nr64(name), [0; 6])
}

fn errno(e: u32) -> u32 {
    RET_ERRNO | e
}

#[test]
fn tables_resolve_names_per_abi() {
    assert_eq!(syscall_number(Abi::X86_64, "read"), Some(0));
    assert_eq!(syscall_number(Abi::X86_64, "mkdir"), Some(83));
    assert_eq!(syscall_number(Abi::X86_64, "getpid"), Some(39));
    assert_eq!(syscall_number(Abi::X86_64, "mkdirat"), Some(258));
    assert_eq!(syscall_number(Abi::I386, "mkdir"), Some(39));
    assert_eq!(syscall_number(Abi::I386, "socketcall"), Some(102));
    assert_eq!(syscall_number(Abi::X86_64, "socketcall"), None);
    assert_eq!(
        syscall_number(Abi::X32, "mkdir"),
        Some(X32_SYSCALL_BIT | 83)
    );
    assert_eq!(
        syscall_number(Abi::X32, "rt_sigaction"),
        Some(X32_SYSCALL_BIT | 512)
    );
    assert_eq!(syscall_number(Abi::X86_64, "no_such_syscall"), None);
    assert_eq!(syscall_number(Abi::X86_64, ""), None);
    // Binary search needs sorted, duplicate-free tables; libc agrees with the headers.
    for table in [syscalls::X86_64, syscalls::I386, syscalls::X32] {
        assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
    }
    assert_eq!(nr64("clone3") as i64, libc::SYS_clone3);
    assert_eq!(nr64("openat2") as i64, libc::SYS_openat2);
}

#[test]
fn default_action_and_simple_rules() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x86(&p, "getpid"), RET_ALLOW);
    assert_eq!(x86(&p, "read"), RET_ALLOW);
    assert_eq!(
        x86(&p, "write"),
        errno(1),
        "ERRNO without errnoRet is EPERM"
    );
    assert_eq!(x86(&p, "close"), errno(1));
    // Above the highest syscall the profile names (getpid, 39): ENOSYS, as runc.
    assert_eq!(x86(&p, "mkdir"), errno(ENOSYS));
    assert_eq!(p.flags, 0);

    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": ["getpid", "mkdirat"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x86(&p, "mkdir"), errno(38));
    assert_eq!(x86(&p, "mkdirat"), RET_ALLOW);
    assert_eq!(x86(&p, "getpid"), RET_ALLOW);
}

#[test]
fn every_action_encodes_like_runc() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 17},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 42},
            {"names": ["fchdir"], "action": "SCMP_ACT_TRACE"},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["tgkill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["pause"], "action": "SCMP_ACT_TRAP"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"},
            {"names": ["ioctl"], "action": "SCMP_ACT_NOTIFY"}
        ]
    }));
    assert_eq!(x86(&p, "mkdir"), 0x0005_0011);
    assert_eq!(x86(&p, "rmdir"), 0x0005_0001);
    assert_eq!(x86(&p, "chdir"), 0x7ff0_002a);
    assert_eq!(x86(&p, "fchdir"), 0x7ff0_0001);
    assert_eq!(x86(&p, "kill"), 0);
    assert_eq!(x86(&p, "tkill"), 0);
    assert_eq!(x86(&p, "tgkill"), 0x8000_0000);
    assert_eq!(x86(&p, "pause"), 0x0003_0000);
    assert_eq!(x86(&p, "uname"), 0x7ffc_0000);
    assert_eq!(x86(&p, "ioctl"), 0x7fc0_0000);
    assert_eq!(x86(&p, "getpid"), RET_ALLOW);
    assert_eq!(p.flags, FLAG_NEW_LISTENER);
}

#[test]
fn flags_are_passed_and_tsync_with_listener_gets_esrch() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
    }));
    assert_eq!(
        p.flags,
        FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC | FLAG_WAIT_KILLABLE_RECV
    );
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert_eq!(p.flags, FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH);
}

#[test]
fn architectures() {
    let rules = json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]);
    // Native only: other arches are bad arch; listed foreign arches are ignored.
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": rules
    }));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), errno(5));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 84, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 39, [0; 6]), RET_KILL_PROCESS);
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 83, [0; 6]), RET_KILL_PROCESS);
    assert_eq!(run(&p, 0, 0, [0; 6]), RET_KILL_PROCESS);

    // No architectures at all still means native.
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), errno(5));
    assert_eq!(run(&p, AUDIT_ARCH_I386, 83, [0; 6]), RET_KILL_PROCESS);

    // i386 listed: its own numbers (mkdir is 39 there, getpid on x86_64).
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": rules
    }));
    assert_eq!(run(&p, AUDIT_ARCH_I386, 39, [0; 6]), errno(5));
    assert_eq!(run(&p, AUDIT_ARCH_I386, 83, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), errno(5));
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 39, [0; 6]), RET_KILL_PROCESS);
}

#[test]
fn x32_bit() {
    let rules = json!([
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
        {"names": ["rt_sigaction"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6}
    ]);
    // x32 not listed: any number with the x32 bit is a bad arch, never an x86_64 rule.
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), errno(5));
    for nr in [
        X32_SYSCALL_BIT,
        X32_SYSCALL_BIT | 83,
        X32_SYSCALL_BIT | 39,
        u32::MAX,
    ] {
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, nr, [0; 6]),
            RET_KILL_PROCESS,
            "{nr:#x}"
        );
    }

    // x32 listed: x32 numbers use the x32 table.
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": rules
    }));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), errno(5));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 13, [0; 6]), errno(6));
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 83, [0; 6]),
        errno(5)
    );
    // x86_64's rt_sigaction is 13; x32's is 512: 13 with the x32 bit is not it.
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 13, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 512, [0; 6]),
        errno(6)
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, [0; 6]),
        RET_ALLOW
    );
}

/// 64-bit values whose 32-bit halves order differently from the whole.
const PROBES: [u64; 12] = [
    0,
    5,
    6,
    0xffff_ffff,
    0x0000_0001_0000_0000,
    0x0000_0001_0000_0004,
    0x0000_0001_0000_0005,
    0x0000_0001_0000_0006,
    0x0000_0001_ffff_ffff,
    0x0000_0002_0000_0004,
    0x8000_0000_0000_0005,
    u64::MAX,
];

fn reference(op: &str, arg: u64, value: u64, two: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

#[test]
fn every_operator_on_64_bit_values() {
    let masks = [
        (0x0000_0001_0000_0005u64, 0x0000_0001_0000_0005u64),
        (0xffff_0000_0000_ff00, 0x1234_0000_0000_5600),
        (0x0000_0000_ffff_ffff, 5),
        (0xffff_ffff_0000_0000, 0x0000_0001_0000_0000),
        (0, 0),
        (0, 1),                                         // never matches
        (0x0000_0000_ffff_ffff, 0x0000_0001_0000_0005), // never matches
    ];
    for op in OPS {
        for &value in &PROBES {
            let twos: Vec<(u64, u64)> = if op == "SCMP_CMP_MASKED_EQ" {
                masks.to_vec()
            } else {
                vec![(value, 0)]
            };
            for (value, two) in twos {
                for index in [0u64, 3, 5] {
                    let p = compile_json(json!({
                        "defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": index, "value": value, "valueTwo": two, "op": op}]}]
                    }));
                    for &arg in &PROBES {
                        let mut args = [0x5555_5555_5555_5555u64; 6];
                        args[index as usize] = arg;
                        let want = if reference(op, arg, value, two) {
                            RET_ALLOW
                        } else {
                            errno(1)
                        };
                        assert_eq!(
                            run(&p, AUDIT_ARCH_X86_64, 16, args),
                            want,
                            "{op} args[{index}]={arg:#x} value={value:#x} valueTwo={two:#x}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn operators_on_32_bit_abis_use_the_low_word() {
    for op in OPS {
        let (value, two) = (0x0000_0001_0000_0005u64, 0x0000_0003_0000_0005u64);
        let p = compile_json(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]
        }));
        for arg in [0u32, 4, 5, 6, u32::MAX] {
            let want = if reference(op, u64::from(arg), value & 0xffff_ffff, two & 0xffff_ffff) {
                RET_ALLOW
            } else {
                errno(1)
            };
            let args = [0, u64::from(arg), 0, 0, 0, 0];
            let i386_ioctl = syscall_number(Abi::I386, "ioctl").unwrap();
            let x32_ioctl = syscall_number(Abi::X32, "ioctl").unwrap();
            assert_eq!(
                run(&p, AUDIT_ARCH_I386, i386_ioctl, args),
                want,
                "i386 {op} {arg}"
            );
            assert_eq!(
                run(&p, AUDIT_ARCH_X86_64, x32_ioctl, args),
                want,
                "x32 {op} {arg}"
            );
        }
    }
}

#[test]
fn several_args_are_anded_and_repeated_index_is_ored() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 7, "op": "SCMP_CMP_LT"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let socket = nr64("socket");
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, socket, [1, 0, 6, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, socket, [1, 0, 7, 0, 0, 0]),
        errno(1)
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, socket, [2, 0, 6, 0, 0, 0]),
        errno(1)
    );
    let pers = nr64("personality");
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, pers, [0; 6]), RET_ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, pers, [8, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, pers, [9, 0, 0, 0, 0, 0]),
        errno(1)
    );
}

#[test]
fn several_rules_for_one_syscall_first_match_wins() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_LOG"},
            {"names": ["personality"], "action": "SCMP_ACT_KILL"}
        ]
    }));
    let pers = nr64("personality");
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, pers, [0; 6]), RET_ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, pers, [8, 0, 0, 0, 0, 0]),
        errno(22)
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, pers, [5, 0, 0, 0, 0, 0]),
        RET_LOG
    );
    // Neighbouring numbers are untouched.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, pers - 1, [0; 6]), errno(1));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, pers + 1, [0; 6]), errno(ENOSYS));
}

#[test]
fn rules_equal_to_the_default_are_skipped_like_runc() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    assert_eq!(x86(&p, "mkdir"), RET_ALLOW);
}

#[test]
fn unknown_names_are_skipped() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["no_such_syscall", "getpid", "socketcall", "arch_prctl"],
             "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    assert_eq!(x86(&p, "getpid"), RET_ALLOW);
    assert_eq!(x86(&p, "arch_prctl"), RET_ALLOW);
    let i386 = |n: &str| syscall_number(Abi::I386, n).unwrap();
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, i386("socketcall"), [0; 6]),
        RET_ALLOW
    );
    assert_eq!(run(&p, AUDIT_ARCH_I386, i386("getpid"), [0; 6]), RET_ALLOW);
}

#[test]
fn enosys_above_the_highest_named_syscall() {
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "mkdir"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
    }));
    let max = nr64("close_range"); // a skipped rule still counts, as in runc
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 100, [0; 6]), errno(1));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, max, [0; 6]), errno(1));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, max + 1, [0; 6]), errno(ENOSYS));
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 0x3fff_ffff, [0; 6]),
        errno(ENOSYS)
    );
    let x32max = syscall_number(Abi::X32, "close_range").unwrap();
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, x32max, [0; 6]), errno(1));
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, x32max + 1, [0; 6]),
        errno(ENOSYS)
    );
    let i386max = syscall_number(Abi::I386, "close_range").unwrap();
    assert_eq!(run(&p, AUDIT_ARCH_I386, i386max, [0; 6]), errno(1));
    assert_eq!(run(&p, AUDIT_ARCH_I386, i386max + 1, [0; 6]), errno(ENOSYS));

    // Permissive defaults get no stub.
    let p = compile_json(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), RET_LOG);
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::ArgIndex { index: 6, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("ioctl") && msg.contains('6'), "{msg}");

    // A huge index must not panic either.
    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": usize::MAX, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::ArgIndex { .. }), "{err}");

    // Operators, actions, architectures and flags outside the spec never become a profile.
    for bad in [
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["ioctl"],
            "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}),
        json!({"defaultAction": "SCMP_ACT_NOPE"}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
    ] {
        assert!(serde_json::from_value::<LinuxSeccomp>(bad).is_err());
    }

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]
    })))
    .unwrap_err();
    assert!(
        err.to_string().contains("mkdir") && err.to_string().contains("70000"),
        "{err}"
    );

    let err = compile(&profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
    assert!(matches!(err, SeccompError::NotifyDefaultAction), "{err}");

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::NotifyOnWrite), "{err}");

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::EmptySyscallName { rule: 0 }),
        "{err}"
    );
}

/// Syscalls Docker's default profile does not allow unconditionally (approximately).
const DOCKER_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clone",
    "clone3",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "socket",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "syslog",
    "lsm_set_self_attr",
];

fn docker_like() -> (Value, Vec<&'static str>) {
    // Everything the tables know minus the denied list, over all three ABIs: ~380 names.
    let mut names: Vec<&str> = syscalls::X86_64
        .iter()
        .chain(syscalls::I386)
        .map(|(n, _)| *n)
        .filter(|n| !DOCKER_DENIED.contains(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    let v = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["sync_file_range2", "swapcontext"], "action": "SCMP_ACT_ALLOW"}
        ]
    });
    (v, names)
}

#[test]
fn docker_like_profile_is_small_and_correct() {
    let (v, allowed) = docker_like();
    assert!(allowed.len() > 350, "{} names", allowed.len());
    let p = compile_json(v);
    assert!(p.insns.len() < 600, "{} instructions", p.insns.len());

    let abis = [
        (Abi::X86_64, AUDIT_ARCH_X86_64),
        (Abi::X32, AUDIT_ARCH_X86_64),
        (Abi::I386, AUDIT_ARCH_I386),
    ];
    let (mut total_steps, mut count, mut max_steps) = (0, 0, 0);
    for (abi, arch) in abis {
        for &(name, nr) in abi.table() {
            let (got, steps) = run_steps(&p, arch, nr, [0; 6]);
            let want = if allowed.contains(&name) {
                RET_ALLOW
            } else {
                match name {
                    "personality" | "clone" | "socket" => RET_ALLOW, // args are 0
                    "clone3" => errno(ENOSYS),
                    _ => errno(1),
                }
            };
            assert_eq!(got, want, "{abi:?} {name}");
            total_steps += steps;
            count += 1;
            max_steps = max_steps.max(steps);
        }
    }
    let clone = nr64("clone");
    // CLONE_NEWUSER is in the mask: refused.
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, clone, [0x1000_0000, 0, 0, 0, 0, 0]),
        errno(1)
    );
    let socket = nr64("socket");
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, socket, [40, 0, 0, 0, 0, 0]),
        errno(1)
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, socket, [2, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    eprintln!(
        "docker-like profile: {} instructions; per syscall: {:.1} average, {} max executed",
        p.insns.len(),
        total_steps as f64 / count as f64,
        max_steps
    );
    assert!(max_steps < 40, "max path {max_steps}");
}

#[test]
fn long_programs_use_long_jumps_and_too_long_is_an_error() {
    // Every syscall gets its own conditional leaf, so the tree needs `ja` trampolines.
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
    let mut rules = Vec::new();
    for (i, n) in names.iter().enumerate() {
        rules.push(
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": i % 100 + 1,
            "args": [{"index": i % 6, "value": i, "op": "SCMP_CMP_EQ"}]}),
        );
    }
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert!(p.insns.iter().any(|i| i.code == bpf::JMP_JA));
    for (i, (_, nr)) in syscalls::X86_64.iter().enumerate() {
        let mut args = [0u64; 6];
        args[i % 6] = i as u64;
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, *nr, args),
            errno((i % 100 + 1) as u32)
        );
        args[i % 6] = i as u64 + (1 << 32);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, *nr, args), RET_ALLOW);
    }

    // Three 6-argument rules, different for every syscall, cannot fit in 4096 instructions.
    let mut rules = Vec::new();
    for (n, name) in names.iter().enumerate() {
        for k in 0..3u64 {
            let args: Vec<Value> = (0..6)
                .map(|i| json!({"index": i, "value": k * 1000 + n as u64, "op": "SCMP_CMP_EQ"}))
                .collect();
            rules.push(json!({"names": [name], "action": "SCMP_ACT_KILL", "args": args}));
        }
    }
    match compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}),
    )) {
        Err(err @ SeccompError::TooLong { .. }) => {
            assert!(err.to_string().contains("4096"), "{err}")
        }
        Err(err) => panic!("unexpected error {err}"),
        Ok(p) => panic!("{} instructions compiled", p.insns.len()),
    }
}
