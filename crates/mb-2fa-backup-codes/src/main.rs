fn main() -> std::process::ExitCode {
    mb_2fa_backup_codes::run(std::env::args_os())
}
