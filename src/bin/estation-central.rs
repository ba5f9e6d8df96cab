fn main() -> std::process::ExitCode {
    estation::central::cli::main()
}
