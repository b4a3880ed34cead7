fn main() -> std::process::ExitCode {
    mb_2fa_disable::run(std::env::args_os())
}
