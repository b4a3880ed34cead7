fn main() -> std::process::ExitCode {
    mb_2fa_verify::run(std::env::args_os())
}
