//! Unit tests of the aarch64 context layer that need crate internals.
use super::*;

#[test]
fn offsets_match_the_assembly() {
    let asm = include_str!("../../../asm/aarch64.S");
    let expected = [
        ("BOBBIN_CTX_X19", CTX_X19),
        ("BOBBIN_CTX_FP", CTX_FP),
        ("BOBBIN_CTX_LR", CTX_LR),
        ("BOBBIN_CTX_SP", CTX_SP),
        ("BOBBIN_CTX_X0", CTX_X0),
        ("BOBBIN_CTX_FPCR", CTX_FPCR),
        ("BOBBIN_CTX_D8", CTX_D8),
        ("BOBBIN_CTX_V0", CTX_V0),
        ("BOBBIN_CTX_RETVAL_GP", CTX_RETVAL_GP),
        ("BOBBIN_CTX_RETVAL_FP", CTX_RETVAL_FP),
        ("BOBBIN_CTX_PARENT", CTX_PARENT),
        ("BOBBIN_CTX_CALLBACK", CTX_CALLBACK),
        ("BOBBIN_CTX_CALLBACK_DATA", CTX_CALLBACK_DATA),
    ];
    for (name, value) in expected {
        let line = asm
            .lines()
            .find(|l| l.starts_with(&format!(".set {name},")))
            .unwrap_or_else(|| panic!("{name} is not defined in the assembly"));
        let asm_value: usize = line.split(',').nth(1).unwrap().trim().parse().unwrap();
        assert_eq!(asm_value, value, "{name}: assembly says {asm_value}, Rust says {value}");
    }
    // The backstop's CFI encodes the parent's offset by hand: DW_OP_breg19 352 is
    // 0x83 0xe0 0x02.
    assert_eq!(CTX_PARENT, 0x60 | (2 << 7));
    assert!(asm.contains("0x83, 0xe0, 0x02"));
}
