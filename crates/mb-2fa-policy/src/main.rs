fn main() -> std::process::ExitCode {
    mb_2fa_policy::run(std::env::args_os())
}
