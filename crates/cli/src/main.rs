//! The `rxc` binary.

fn main() {
    std::process::exit(rxd_cli::main())
}
