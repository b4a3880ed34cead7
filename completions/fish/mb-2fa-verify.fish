complete -c mb-2fa-verify -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-verify -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-verify -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-verify -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-verify -l code -d 'Code from the app (6 digits; 8 for some imported enrollments), or a backup code XXXX-XXXX-XXXX (an imported scratch code: its 8 digits); - reads it from stdin' -r
complete -c mb-2fa-verify -l diagnose-minutes -d 'How far back --diagnose searches (ahead: never beyond the verification window)' -r
complete -c mb-2fa-verify -l resync -d 'Re-synchronise the clock drift from two consecutive codes (one may be -, read from stdin)' -r
complete -c mb-2fa-verify -l role -d 'With --login: a role of the account (repeatable), as for mb-2fa-policy check' -r
complete -c mb-2fa-verify -l pam-service -d 'With --login: the PAM service (sshd, sudo), recorded in the audit trail' -r
complete -c mb-2fa-verify -l pam-user -d 'With --login: the PAM user, recorded in the audit trail' -r
complete -c mb-2fa-verify -l pam-rhost -d 'With --login: the remote host (PAM_RHOST), recorded in the audit trail' -r
complete -c mb-2fa-verify -l pam-tty -d 'With --login: the terminal (PAM_TTY), recorded in the audit trail' -r
complete -c mb-2fa-verify -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-verify -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-verify -l diagnose -d 'Explain where the code matches and why; accepts nothing, counts a code that matches nowhere'
complete -c mb-2fa-verify -l login -d 'A whole login, as pam_mb2fa runs it: the policy decides, then the code is read from stdin (JSON lines, see the man page)'
complete -c mb-2fa-verify -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-verify -s V -l version -d 'Print version'
