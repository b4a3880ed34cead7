complete -c mb-2fa-enable -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-enable -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-enable -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-enable -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400); else [key] file of the config file, else /etc/mailborder/2fa.key' -r -F
complete -c mb-2fa-enable -l issuer -d 'Name shown in the authenticator app [default: the policy\'s issuer, else Mailborder]' -r
complete -c mb-2fa-enable -l qr -d 'QR code as Unicode half blocks, ASCII, or not at all; auto picks by locale' -r -f -a "auto\t''
unicode\t''
ascii\t''
none\t''"
complete -c mb-2fa-enable -l qr-file -d 'Also write the QR code to a new SVG file (mode 0600: it holds the secret)' -r -F
complete -c mb-2fa-enable -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-enable -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-enable -l force -d 'Replace an active enrollment (the old phone setup and backup codes stop working)'
complete -c mb-2fa-enable -l qr-invert -d 'Swap dark and light (for dark terminal themes when colours are off)'
complete -c mb-2fa-enable -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-enable -s V -l version -d 'Print version'
