//! The build script of every component (`build = "../stack_size.rs"`; the
//! console's own build script calls it too): link the wasm32 build with a
//! 256 KiB stack instead of the linker's default 1 MiB.
//!
//! Why: Spin's pooling allocator resets each linear memory after a request
//! by writing zeros over it, up to 2 MiB of it, whether the guest used the
//! bytes or not, and the stack sits inside that memory. A composed component
//! has two memories (the API component's and `platform`'s), so a 1 MiB stack
//! each made that reset about a quarter of the runtime's CPU on a request
//! that touches no database (`perf` on `spin up`, a 404). The deepest stack a
//! request needs is serde_json's 128 levels of nesting: the e2e case
//! `json_nested_to_the_parsers_limit_is_answered_not_a_crash` passes at
//! 64 KiB and traps at 16 KiB, so 256 KiB leaves a margin for the rest.

pub fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size={}", 256 * 1024);
    }
}
