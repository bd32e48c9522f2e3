//! Rebuilds `hello` when the compile-time variant switches change, and rejects
//! unknown values of `HELLO_BROKEN` before compiling.

fn main() {
    println!("cargo:rerun-if-env-changed=HELLO_VERSION");
    println!("cargo:rerun-if-env-changed=HELLO_BROKEN");
    if let Ok(broken) = std::env::var("HELLO_BROKEN")
        && !matches!(broken.as_str(), "" | "crash" | "hang" | "500")
    {
        eprintln!(
            "HELLO_BROKEN={broken:?} is not a known variant: use crash, hang or 500 (or unset it)"
        );
        std::process::exit(1);
    }
}
