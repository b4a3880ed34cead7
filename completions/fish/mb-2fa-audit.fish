complete -c mb-2fa-audit -l db -d 'SQLite database shared by all mb-2fa tools' -r -F
complete -c mb-2fa-audit -l email -d 'Only records about this account' -r
complete -c mb-2fa-audit -l since -d 'Only records from this time on: 2026-11-28T09:00:00Z, or a span back like 24h or 7d' -r
complete -c mb-2fa-audit -l limit -d 'At most N records' -r
complete -c mb-2fa-audit -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-audit -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-audit -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-audit -s V -l version -d 'Print version'
