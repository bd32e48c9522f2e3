//! What `hoist build` needs to know about an ELF file it packages: the machine it runs
//! on (as Debian architectures), the shared libraries and symbol versions it needs,
//! its build-id, and whether stripping would remove anything.

use std::path::Path;

use anyhow::{Context, bail};
use object::read::elf::{Dyn as _, ElfFile, FileHeader};
use object::{Architecture, FileKind, Object as _, ObjectSection as _};

/// The first bytes of every ELF file.
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// The facts read from one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// The machine type, as `object` names it (from `e_machine` and the ELF class).
    pub architecture: Architecture,
    /// Whether the file is little-endian.
    pub little_endian: bool,
    /// `DT_NEEDED` entries: the sonames the dynamic linker loads (empty: static).
    pub needed: Vec<String>,
    /// Symbol versions required from other objects, as `(soname, version)`, e.g.
    /// `("libc.so.6", "GLIBC_2.34")`.
    pub version_needs: Vec<(String, String)>,
    /// The GNU build-id, if the linker wrote one.
    pub build_id: Option<Vec<u8>>,
    /// Whether it holds a symbol table or DWARF sections that stripping would remove.
    pub has_debug: bool,
}

impl ElfFacts {
    /// The Debian architectures a binary of this machine type can be packaged for;
    /// empty when hoist does not know the machine.
    pub fn debian_architectures(&self) -> &'static [&'static str] {
        match (self.architecture, self.little_endian) {
            (Architecture::X86_64, _) => &["amd64"],
            (Architecture::X86_64_X32, _) => &["x32"],
            (Architecture::I386, _) => &["i386", "hurd-i386"],
            (Architecture::Aarch64, true) => &["arm64"],
            (Architecture::Arm, true) => &["armhf", "armel"],
            (Architecture::Riscv64, _) => &["riscv64"],
            (Architecture::PowerPc64, true) => &["ppc64el"],
            (Architecture::PowerPc64, false) => &["ppc64"],
            (Architecture::PowerPc, false) => &["powerpc"],
            (Architecture::S390x, _) => &["s390x"],
            (Architecture::LoongArch64, _) => &["loong64"],
            (Architecture::Mips64, true) => &["mips64el"],
            (Architecture::Mips, true) => &["mipsel"],
            (Architecture::Sparc64, _) => &["sparc64"],
            _ => &[],
        }
    }

    /// A name for the machine in error messages, e.g. `aarch64`.
    pub fn machine_name(&self) -> String {
        format!("{:?}", self.architecture).to_lowercase()
    }
}

/// Whether `path` starts with the ELF magic. Unreadable or short files are not ELF
/// (the package build reports them).
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == ELF_MAGIC)
}

/// Reads the facts of the ELF file at `path`.
///
/// # Errors
/// When the file cannot be read or is not a well-formed ELF file.
pub fn read(path: &Path) -> anyhow::Result<ElfFacts> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&data).with_context(|| format!("{} is not a well-formed ELF file", path.display()))
}

/// Parses an ELF image held in memory.
///
/// # Errors
/// When `data` is not a well-formed ELF file.
pub fn parse(data: &[u8]) -> anyhow::Result<ElfFacts> {
    match FileKind::parse(data)? {
        FileKind::Elf32 => facts(&object::read::elf::ElfFile32::<object::Endianness>::parse(
            data,
        )?),
        FileKind::Elf64 => facts(&object::read::elf::ElfFile64::<object::Endianness>::parse(
            data,
        )?),
        other => bail!("it is a {other:?} file, not ELF"),
    }
}

fn facts<Elf: FileHeader<Endian = object::Endianness>>(
    file: &ElfFile<'_, Elf>,
) -> anyhow::Result<ElfFacts> {
    let endian = file.endian();
    let data = file.data();
    let sections = file.elf_section_table();

    let mut needed = Vec::new();
    if let Some((entries, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for entry in entries {
            if entry.tag32(endian) == Some(object::elf::DT_NEEDED) {
                let name = entry.string(endian, strings)?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }

    let mut version_needs = Vec::new();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        while let Some((need, mut auxes)) = needs.next()? {
            let file_name = need.file(endian, strings)?;
            let file_name = String::from_utf8_lossy(file_name).into_owned();
            while let Some(aux) = auxes.next()? {
                let version = String::from_utf8_lossy(aux.name(endian, strings)?).into_owned();
                version_needs.push((file_name.clone(), version));
            }
        }
    }

    let has_debug = file.symbol_table().is_some()
        || file
            .sections()
            .any(|s| s.name().is_ok_and(|n| n.starts_with(".debug_")));
    Ok(ElfFacts {
        architecture: file.architecture(),
        little_endian: file.is_little_endian(),
        needed,
        version_needs,
        build_id: file.build_id()?.map(<[u8]>::to_vec),
        has_debug,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aarch64 fixture (see tests/fixtures/elf/README.md for how it was made).
    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/elf")
            .join(name)
    }

    #[test]
    fn this_test_binary_is_the_hosts_machine() {
        let me = std::env::current_exe().unwrap();
        assert!(is_elf(&me));
        let facts = read(&me).unwrap();
        let expected = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => panic!("add the Debian name of {other} to this test"),
        };
        assert_eq!(facts.debian_architectures(), [expected]);
        assert!(facts.needed.iter().any(|n| n == "libc.so.6"), "{facts:?}");
        assert!(
            facts
                .version_needs
                .iter()
                .any(|(lib, v)| lib == "libc.so.6" && v.starts_with("GLIBC_2.")),
            "{facts:?}"
        );
    }

    #[test]
    fn aarch64_binaries_are_arm64() {
        for name in ["hello-aarch64", "hello-aarch64-dyn"] {
            let facts = read(&fixture(name)).unwrap();
            assert_eq!(facts.architecture, Architecture::Aarch64, "{name}");
            assert_eq!(facts.debian_architectures(), ["arm64"], "{name}");
            assert_eq!(facts.machine_name(), "aarch64");
        }
    }

    #[test]
    fn non_elf_is_refused() {
        assert!(!is_elf(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("Cargo.toml")
                .as_path()
        ));
        assert!(parse(b"#!/bin/sh\necho hi\n").is_err());
        assert!(parse(b"\x7fELF").is_err());
    }
}
