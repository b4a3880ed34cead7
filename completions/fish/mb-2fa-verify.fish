complete -c mb-2fa-verify -l db -d 'SQLite database shared by all mb-2fa tools' -r -F
complete -c mb-2fa-verify -l email -d 'Account (email address); trimmed and lower-cased' -r
complete -c mb-2fa-verify -l key-file -d 'Key that seals the TOTP secrets (created with the first enrollment, mode 0400)' -r -F
complete -c mb-2fa-verify -l code -d '6-digit code from the app, or a backup code XXXX-XXXX-XXXX; - reads it from stdin' -r
complete -c mb-2fa-verify -l diagnose-minutes -d 'How far back --diagnose searches (ahead: never beyond the verification window)' -r
complete -c mb-2fa-verify -l resync -d 'Re-synchronise the clock drift from two consecutive codes (one may be -, read from stdin)' -r
complete -c mb-2fa-verify -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-verify -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-verify -l diagnose -d 'Explain where the code matches and why; accepts nothing, counts a code that matches nowhere'
complete -c mb-2fa-verify -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-verify -s V -l version -d 'Print version'
