complete -c mb-2fa-list -l db -d 'SQLite database shared by all mb-2fa tools' -r -F
complete -c mb-2fa-list -l json -d 'Print one JSON document on stdout, on success and on failure'
complete -c mb-2fa-list -s q -l quiet -d 'Print only the essential result (errors still go to stderr)'
complete -c mb-2fa-list -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mb-2fa-list -s V -l version -d 'Print version'
