complete -c mb-2fa-audit -l db -d 'The store: an SQLite file, or mariadb://USER@HOST[:PORT]/DB (or mariadb://USER@localhost/DB?socket=PATH; ?password_file=PATH&tls_ca=PATH); no password in the URL. Else [store] of the config file, else /var/lib/mailborder/2fa.db' -r
complete -c mb-2fa-audit -l config -d 'Config file with [store] and [key] (default /etc/mailborder/2fa.toml, read if it exists)' -r -F
complete -c mb-2fa-audit -l email -d 'Only records about this account' -r
complete -c mb-2fa-audit -l since -d 'Only records from this time on: 2026-11-28T09:00:00Z, or a span back like 24h or 7d' -r
complete -c mb-2fa-audit -l limit -d 'At most N records' -r
complete -c mb-2fa-audit -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-audit -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-audit -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-audit -s V -l version -d 'Print version'
