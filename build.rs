//! Builds the small C helper for long double arithmetic (src/longdouble.c),
//! which INCRBYFLOAT and HINCRBYFLOAT need to match Redis bit for bit.

fn main() {
    println!("cargo:rerun-if-changed=src/longdouble.c");
    cc::Build::new()
        .file("src/longdouble.c")
        .warnings(true)
        .compile("forkless_longdouble");
}
