fn main() -> std::process::ExitCode {
    mb_2fa_list::run(std::env::args_os())
}
