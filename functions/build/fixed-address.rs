//! The build script of every Lambda function (and of `make bench`'s floor,
//! so the floor is built exactly as they are): link the function's
//! executable at a fixed address (`-no-pie`).
//!
//! A position-independent executable of this size carries ~34,000 relative
//! relocations. The loader applies them at every cold start, and each one
//! dirties the page it sits in: a third of the cold start's wall clock went
//! there (docs/BENCHMARKS.md, "Cold start"). Linked at a fixed address, the
//! linker resolves them and ~130 remain, for the C library's symbols. The
//! price is that the executable's own image is no longer randomised; the
//! stack, the heap and the shared libraries still are. docs/SECURITY.md
//! ("Fixed-address executables") weighs it; `PIE=1` at build time keeps PIE.
//!
//! Only the package's binaries get the flag (`rustc-link-arg-bins`): its
//! libraries, tests, build scripts and proc-macros link as they always do.
//! The code is still compiled position-independent; only the link changes.

fn main() {
    println!("cargo::rerun-if-env-changed=PIE");
    if std::env::var_os("PIE").is_none_or(|v| v.is_empty() || v == "0") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
