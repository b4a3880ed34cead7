fn main() -> std::process::ExitCode {
    mb_2fa_enable::run(std::env::args_os())
}
