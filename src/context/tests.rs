//! Unit tests of the context layer that need crate internals.
use super::*;

#[test]
fn offsets_match_the_assembly() {
    let asm = include_str!("../../asm/x86_64_sysv.S");
    let expected = [
        ("BOBBIN_CTX_RBX", CTX_RBX),
        ("BOBBIN_CTX_RSP", CTX_RSP),
        ("BOBBIN_CTX_RBP", CTX_RBP),
        ("BOBBIN_CTX_RDI", CTX_RDI),
        ("BOBBIN_CTX_R12", CTX_R12),
        ("BOBBIN_CTX_R13", CTX_R13),
        ("BOBBIN_CTX_R14", CTX_R14),
        ("BOBBIN_CTX_R15", CTX_R15),
        ("BOBBIN_CTX_RSI", CTX_RSI),
        ("BOBBIN_CTX_MXCSR", CTX_MXCSR),
        ("BOBBIN_CTX_FPCW", CTX_FPCW),
        ("BOBBIN_CTX_XMM0", CTX_XMM0),
        ("BOBBIN_CTX_RETVAL_GP", CTX_RETVAL_GP),
        ("BOBBIN_CTX_RETVAL_FP", CTX_RETVAL_FP),
        ("BOBBIN_CTX_PARENT", CTX_PARENT),
        ("BOBBIN_CTX_CALLBACK", CTX_CALLBACK),
        ("BOBBIN_CTX_CALLBACK_DATA", CTX_CALLBACK_DATA),
    ];
    for (name, value) in expected {
        let line = asm
            .lines()
            .find(|l| l.trim_start().starts_with(&format!(".set {name},")))
            .unwrap_or_else(|| panic!("{name} is not defined in the assembly"));
        let asm_value: usize = line.split(',').nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(asm_value, value, "{name}: assembly says {asm_value}, Rust says {value}");
    }
    // The parent offset is also baked into the CFI escapes as SLEB128 0xf0 0x01.
    assert_eq!(CTX_PARENT, 0x70 | (1 << 7));
    assert_eq!(core::mem::align_of::<Context>(), 64);
}
