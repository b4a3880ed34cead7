fn main() -> std::process::ExitCode {
    mb_2fa_audit::run(std::env::args_os())
}
