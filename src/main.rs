use std::process::ExitCode;

fn main() -> ExitCode {
    chartty::cli::main()
}
