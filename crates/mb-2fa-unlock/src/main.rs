fn main() -> std::process::ExitCode {
    mb_2fa_unlock::run(std::env::args_os())
}
