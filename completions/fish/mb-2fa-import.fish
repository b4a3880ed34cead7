complete -c mb-2fa-import -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-import -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-import -l from -d 'What to import: google-authenticator, otpauth or oath-users' -r -f -a "google-authenticator\t''
otpauth\t''
oath-users\t''"
complete -c mb-2fa-import -l email -d 'The account: required with google-authenticator; with otpauth, for a single URI (else the label\'s account)' -r
complete -c mb-2fa-import -l domain -d 'oath-users: make user@DOMAIN of user names that are not email addresses' -r
complete -c mb-2fa-import -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-import -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-import -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-import -l force -d 'Replace enrollments that exist (their secrets and backup codes stop working)'
complete -c mb-2fa-import -l dry-run -d 'Show what would be imported; change nothing (no key needed)'
complete -c mb-2fa-import -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-import -s V -l version -d 'Print version'
