fn main() -> std::process::ExitCode {
    estation::cli::main()
}
