complete -c mb-2fa-backup-codes -l db -d 'SQLite database shared by all mb-2fa tools' -r -F
complete -c mb-2fa-backup-codes -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-backup-codes -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-backup-codes -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-backup-codes -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-backup-codes -s V -l version -d 'Print version'
