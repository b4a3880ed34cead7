fn main() -> std::process::ExitCode {
    mb_2fa_store::run(std::env::args_os())
}
