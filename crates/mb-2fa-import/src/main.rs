fn main() -> std::process::ExitCode {
    mb_2fa_import::run(std::env::args_os())
}
